//! Problems located in files — environment files and rendered ones — as errors carry them.
//! A leaf: the modules that find problems and the error type that reports them both use it.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// Where in a file: line and column, both from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub col: usize,
}

impl Position {
    pub const START: Position = Position { line: 1, col: 1 };
}

/// A secret found in a rendered file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub file: String,
    pub line: usize,
    pub problem: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.problem)
    }
}

/// One problem in an environment file, located precisely enough to jump to it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// Dotted path of the offending key, e.g. `services.trac.cpu`.
    pub key: String,
    pub message: String,
    /// The shape or values that would have been accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
}

impl Diagnostic {
    pub fn new(file: PathBuf, at: Position, key: &str, message: impl Into<String>) -> Self {
        Diagnostic {
            file,
            line: at.line,
            column: at.col,
            key: key.to_string(),
            message: message.into(),
            expected: None,
        }
    }

    pub fn expected(mut self, expected: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::ui::text::shown;
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if !self.key.is_empty() {
            write!(f, "{}: ", shown(&self.key))?;
        }
        // Messages quote YAML values: what reaches a terminal is seen, never obeyed.
        f.write_str(&shown(&self.message))?;
        if let Some(e) = &self.expected {
            write!(f, "\n    expected: {}", shown(e))?;
        }
        Ok(())
    }
}

/// Every problem found in one file, reported together.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}
