//! What a deploy tells the world while it works: live lines on a terminal, timestamped plain
//! lines in CI, one JSON event per line with `-o jsonl`, or a list in memory for tests.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;

use crate::cli::OutputFormat;
use crate::ui::progress::{Line, Progress};

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// UTC, `2026-11-26T01:02:03Z`.
    pub at: String,
    /// Seconds since the deploy started.
    pub elapsed: f64,
    pub phase: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// phase_started, phase_finished, info, warning, ecs_event, task_stopped, target, probe.
    pub kind: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseTime {
    pub phase: String,
    pub seconds: f64,
}

enum Sink {
    /// People: through `Progress` (live or plain lines on stderr).
    Text,
    /// Machines: JSON lines on stdout (and plain lines on stderr for the log).
    Jsonl,
    Memory(Arc<Mutex<Vec<Event>>>),
}

pub struct Reporter {
    sink: Sink,
    progress: Progress,
    started: Instant,
    phases: Mutex<Vec<PhaseTime>>,
}

impl Reporter {
    pub fn new(format: OutputFormat, quiet: bool) -> Self {
        let progress = Progress::new(quiet);
        Reporter {
            started: progress.started(),
            sink: if format == OutputFormat::Jsonl {
                Sink::Jsonl
            } else {
                Sink::Text
            },
            progress,
            phases: Mutex::new(Vec::new()),
        }
    }

    /// Events kept in memory (tests read them back).
    pub fn memory() -> (Self, Arc<Mutex<Vec<Event>>>) {
        let events = Arc::new(Mutex::new(Vec::new()));
        let progress = Progress::new(true);
        (
            Reporter {
                started: progress.started(),
                sink: Sink::Memory(events.clone()),
                progress,
                phases: Mutex::new(Vec::new()),
            },
            events,
        )
    }

    pub fn emit(&self, phase: &str, service: Option<&str>, kind: &str, message: &str) {
        let event = Event {
            at: crate::ui::utc_now(),
            elapsed: (self.started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
            phase: phase.to_string(),
            service: service.map(String::from),
            kind: kind.to_string(),
            message: message.to_string(),
        };
        match &self.sink {
            Sink::Memory(list) => {
                if let Ok(mut l) = list.lock() {
                    l.push(event);
                }
            }
            Sink::Jsonl => {
                if let Ok(s) = serde_json::to_string(&event) {
                    crate::ui::print(&format!("{}\n", crate::ui::text::json_safe(s)));
                }
                self.text(&event);
            }
            Sink::Text => self.text(&event),
        }
    }

    fn text(&self, e: &Event) {
        let who = match &e.service {
            Some(s) => format!("[{}] {s}: ", e.phase),
            None => format!("[{}] ", e.phase),
        };
        let mark = match e.kind.as_str() {
            "warning" => "warning: ",
            "ecs_event" => "event: ",
            _ => "",
        };
        if self.progress.is_live() {
            self.progress.println(&format!("{who}{mark}{}", e.message));
        } else {
            self.progress.println(&format!(
                "{} {:>6.1}s {who}{mark}{}",
                e.at, e.elapsed, e.message
            ));
        }
    }

    pub fn info(&self, phase: &str, service: Option<&str>, message: &str) {
        self.emit(phase, service, "info", message);
    }

    pub fn warn(&self, phase: &str, service: Option<&str>, message: &str) {
        self.emit(phase, service, "warning", message);
    }

    /// The progress display, shared with the image builds so all lines count from one start.
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// A live line for long work (a spinner on a terminal; plain lines otherwise).
    pub fn line(&self, prefix: &str) -> Line {
        self.progress.line(prefix)
    }

    /// Starts a phase; `finish` on the returned guard records its duration.
    pub fn phase(&self, name: &str) -> Phase<'_> {
        self.emit(name, None, "phase_started", &format!("{name} …"));
        Phase {
            reporter: self,
            name: name.to_string(),
            started: Instant::now(),
        }
    }

    pub fn phases(&self) -> Vec<PhaseTime> {
        self.phases.lock().map(|p| p.clone()).unwrap_or_default()
    }

    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

pub struct Phase<'a> {
    reporter: &'a Reporter,
    name: String,
    started: Instant,
}

impl Phase<'_> {
    pub fn finish(self, message: &str) {
        let seconds = (self.started.elapsed().as_secs_f64() * 100.0).round() / 100.0;
        self.reporter.emit(
            &self.name,
            None,
            "phase_finished",
            &format!("{message} ({seconds:.1}s)"),
        );
        if let Ok(mut p) = self.reporter.phases.lock() {
            p.push(PhaseTime {
                phase: self.name.clone(),
                seconds,
            });
        }
    }
}
