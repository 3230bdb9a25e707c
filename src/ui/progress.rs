//! Progress of long work: live lines on a terminal (indicatif), plain timestamped lines
//! in CI or when output is not a terminal — never redraws in a log file.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    multi: Option<MultiProgress>,
    started: Instant,
    quiet: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        let live = std::io::stderr().is_terminal() && std::env::var_os("CI").is_none() && !quiet;
        Progress {
            multi: live.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            started: Instant::now(),
            quiet,
        }
    }

    /// Whether lines redraw in place (a terminal, not CI).
    pub fn is_live(&self) -> bool {
        self.multi.is_some()
    }

    /// A finished line of text: above the live lines on a terminal, plain otherwise.
    pub fn println(&self, text: &str) {
        if self.quiet {
            return;
        }
        match &self.multi {
            Some(m) => {
                if m.println(text).is_err() {
                    eprintln!("{text}");
                }
            }
            None => eprintln!("{text}"),
        }
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    pub fn line(&self, prefix: &str) -> Line {
        let bar = self.multi.as_ref().map(|m| {
            let b = m.add(ProgressBar::new_spinner());
            b.set_style(
                ProgressStyle::with_template("{spinner} {prefix:.bold} {elapsed:>4} {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b.set_prefix(prefix.to_string());
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        Line {
            bar,
            prefix: prefix.to_string(),
            started: self.started,
            quiet: self.quiet,
        }
    }
}

pub struct Line {
    bar: Option<ProgressBar>,
    prefix: String,
    started: Instant,
    quiet: bool,
}

impl Line {
    pub fn message(&self, m: &str) {
        match &self.bar {
            Some(b) => b.set_message(m.to_string()),
            None if !self.quiet => {
                eprintln!(
                    "{} {:>6.1}s [{}] {m}",
                    super::utc_now(),
                    self.started.elapsed().as_secs_f64(),
                    self.prefix
                );
            }
            None => {}
        }
    }

    /// Something the user should read after the line is gone (printed above live lines).
    pub fn warn(&self, m: &str) {
        let text = format!("warning: [{}] {m}", self.prefix);
        match &self.bar {
            Some(b) => b.println(text),
            None => eprintln!("{text}"),
        }
    }

    /// A fact worth keeping on screen: printed above live lines on a terminal, an ordinary
    /// line in a log.
    pub fn note(&self, m: &str) {
        match &self.bar {
            Some(b) => b.println(format!("[{}] {m}", self.prefix)),
            None => self.message(m),
        }
    }

    pub fn finish(&self, m: &str) {
        match &self.bar {
            Some(b) => b.finish_with_message(m.to_string()),
            None => self.message(m),
        }
    }
}
