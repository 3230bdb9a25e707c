//! How results reach the user: readable text, or one JSON document for machines.

pub mod progress;
pub mod text;

use serde::Serialize;

use crate::cli::OutputFormat;
use crate::error::Error;

/// Writes to standard output. A reader that went away (`learntrac local ps | head -1`) ends
/// the program quietly with success, as it ends `cat`, instead of a panic.
pub fn print(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush())
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(0);
    }
}

/// What a person answered when asked to type a word before something destructive.
pub enum Answer {
    Confirmed,
    Refused,
    /// Standard input or error is not a terminal (CI, a pipe): nobody was asked.
    NoTerminal,
}

/// Shows `prompt` on standard error and reads one line from standard input; only `expected`,
/// typed exactly, confirms.
pub fn ask(prompt: &str, expected: &str) -> Answer {
    use std::io::IsTerminal;
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Answer::NoTerminal;
    }
    eprint!("{prompt}");
    let mut answer = String::new();
    if std::io::stdin().read_line(&mut answer).is_ok() && answer.trim() == expected {
        Answer::Confirmed
    } else {
        Answer::Refused
    }
}

static VERBOSE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `-v`: errors show their whole cause chain, not only the line that says what to do.
pub fn set_verbose(on: bool) {
    VERBOSE.store(on, std::sync::atomic::Ordering::Relaxed);
}

pub fn verbose() -> bool {
    VERBOSE.load(std::sync::atomic::Ordering::Relaxed)
}

pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    utc(i64::try_from(secs).unwrap_or(0))
}

/// Seconds since the epoch as `2026-11-30T21:00:00Z`.
pub fn utc(secs: i64) -> String {
    aws_smithy_types::DateTime::from_secs(secs)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}

pub struct Output {
    format: OutputFormat,
    quiet: bool,
}

impl Output {
    pub fn new(format: OutputFormat, quiet: bool) -> Self {
        Output { format, quiet }
    }

    pub fn quiet(&self) -> bool {
        self.quiet
    }

    /// `-o json` or `-o jsonl`: stdout is for machines.
    pub fn is_json(&self) -> bool {
        self.format != OutputFormat::Human
    }

    pub fn format(&self) -> OutputFormat {
        self.format
    }

    /// A command's result: `human` on a terminal, the serialized value with `-o json`.
    pub fn result<T: Serialize>(&self, value: &T, human: impl FnOnce() -> String) {
        match self.format {
            OutputFormat::Json => match serde_json::to_string_pretty(value) {
                Ok(s) => print(&format!("{}\n", text::json_safe(s))),
                Err(e) => eprintln!("error: cannot encode the result as JSON: {e}"),
            },
            OutputFormat::Jsonl => match serde_json::to_string(value) {
                Ok(s) => print(&format!("{}\n", text::json_safe(s))),
                Err(e) => eprintln!("error: cannot encode the result as JSON: {e}"),
            },
            OutputFormat::Human if !self.quiet => {
                let text = human();
                if !text.is_empty() {
                    print(&format!("{}\n", text.trim_end()));
                }
            }
            OutputFormat::Human => {}
        }
    }

    /// A line of progress for people, on stderr (so JSON on stdout stays parseable).
    pub fn say(&self, text: &str) {
        if !self.quiet {
            eprintln!("{text}");
        }
    }

    /// A note for people (never on stdout, so JSON stays parseable).
    pub fn note(&self, text: &str) {
        if !self.quiet {
            eprintln!("note: {text}");
        }
    }

    pub fn error(&self, e: &Error) {
        eprintln!("error: {e}");
        if let Some(detail) = e.detail() {
            if verbose() {
                eprintln!("    cause: {detail}");
            } else {
                eprintln!("    (run with -v for the full cause)");
            }
        }
        if self.is_json() {
            let diagnostics = match e {
                Error::Config(d) => serde_json::to_value(d).unwrap_or_default(),
                _ => serde_json::Value::Array(vec![]),
            };
            let doc = serde_json::json!({
                "ok": false,
                "exit_code": e.exit_code(),
                "error": e.to_string(),
                "diagnostics": diagnostics,
            });
            if self.format == OutputFormat::Jsonl {
                print(&format!("{doc}\n"));
            } else {
                print(&format!("{doc:#}\n"));
            }
        }
    }
}
