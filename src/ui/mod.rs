//! How results reach the user: readable text, or one JSON document for machines.

pub mod progress;

use serde::Serialize;

use crate::cli::OutputFormat;
use crate::error::Error;

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

    pub fn is_json(&self) -> bool {
        self.format == OutputFormat::Json
    }

    /// A command's result: `human` on a terminal, the serialized value with `-o json`.
    pub fn result<T: Serialize>(&self, value: &T, human: impl FnOnce() -> String) {
        match self.format {
            OutputFormat::Json => match serde_json::to_string_pretty(value) {
                Ok(s) => println!("{s}"),
                Err(e) => eprintln!("error: cannot encode the result as JSON: {e}"),
            },
            OutputFormat::Human if !self.quiet => {
                let text = human();
                if !text.is_empty() {
                    println!("{}", text.trim_end());
                }
            }
            OutputFormat::Human => {}
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
            println!("{doc:#}");
        }
    }
}
