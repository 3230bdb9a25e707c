//! One error type for the CLI; each variant knows its exit code (documented in docs/ci.md).

use std::path::PathBuf;

use crate::diagnostic::{Diagnostics, Finding};

/// Exit codes are part of the CLI contract: CI scripts branch on them.
pub mod exit {
    pub const OK: i32 = 0;
    pub const FAILURE: i32 = 1;
    pub const USAGE: i32 = 2;
    /// A prerequisite is missing: Docker Engine, AWS credentials, a tool.
    pub const PREFLIGHT: i32 = 3;
    /// Building or pushing an image failed.
    pub const IMAGE: i32 = 4;
    /// terraform init, plan or apply failed, or a destructive plan was not confirmed.
    pub const TERRAFORM: i32 = 5;
    /// A rollout failed or was rolled back, or the new version does not serve.
    pub const ROLLOUT: i32 = 6;
    /// A phase did not finish within its timeout.
    pub const TIMEOUT: i32 = 7;
    /// Interrupted by Ctrl-C (128 + SIGINT, as shells report it).
    pub const INTERRUPTED: i32 = 130;
}

pub const CREDENTIALS_FIX: &str = "set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where a role provides them (check with `aws sts get-caller-identity`)";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Config(Diagnostics),

    #[error("{}", unknown_environment(.name, .file, .available))]
    UnknownEnvironment {
        name: String,
        file: PathBuf,
        available: Vec<String>,
    },

    #[error(
        "no learntrac project here: no `environments/` folder in {} or its parents\n    hint: run inside the repository, or pass --root DIR",
        .searched.display()
    )]
    NoProject { searched: PathBuf },

    #[error("template {name}: {message}")]
    Template { name: String, message: String },

    #[error("cannot use --templates {}: {message}", .dir.display())]
    TemplateOverride { dir: PathBuf, message: String },

    #[error(
        "the rendered files would expose secrets in plain text; nothing was written:\n{}",
        .0.iter().map(|f| format!("    {f}")).collect::<Vec<_>>().join("\n")
    )]
    SecretExposed(Vec<Finding>),

    #[error("{what}\n    hint: {hint}")]
    Preflight { what: String, hint: String },

    /// No AWS credentials anywhere in the chain: one line of cause, one of fix; the SDK's
    /// cause chain (`detail`) only with -v.
    #[error("{what}: no AWS credentials were found\n    fix: {CREDENTIALS_FIX}")]
    Credentials { what: String, detail: String },

    /// A value the command refuses (exit 2, nothing changed).
    #[error("{what}\n    hint: {hint}")]
    Invalid { what: String, hint: String },

    #[error("failed to {what} for {which}: {cause}")]
    Aws {
        what: String,
        which: String,
        cause: String,
    },

    #[error("local stack, {component}: {message}")]
    Local { component: String, message: String },

    #[error("image {image}: {message}")]
    Image { image: String, message: String },

    #[error("terraform {step}: {message}")]
    Terraform { step: String, message: String },

    #[error("{0}")]
    Rollout(String),

    #[error("{0}")]
    Timeout(String),

    #[error("interrupted: {0}")]
    Interrupted(String),

    #[error("failed to {action}: {source}")]
    Io {
        action: String,
        #[source]
        source: std::io::Error,
    },
}

fn unknown_environment(name: &str, file: &std::path::Path, available: &[String]) -> String {
    let list = if available.is_empty() {
        "none".to_string()
    } else {
        available.join(", ")
    };
    format!(
        "{}: no such environment `{name}`\n    available: {list}",
        file.display()
    )
}

impl Error {
    pub fn io(action: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            action: action.into(),
            source,
        }
    }

    /// More about the cause than the message says, shown with -v.
    pub fn detail(&self) -> Option<&str> {
        match self {
            Error::Credentials { detail, .. } => Some(detail),
            _ => None,
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_)
            | Error::UnknownEnvironment { .. }
            | Error::NoProject { .. }
            | Error::Template { .. }
            | Error::TemplateOverride { .. }
            | Error::SecretExposed(_)
            | Error::Invalid { .. } => exit::USAGE,
            Error::Preflight { .. } | Error::Credentials { .. } => exit::PREFLIGHT,
            Error::Image { .. } => exit::IMAGE,
            Error::Terraform { .. } => exit::TERRAFORM,
            Error::Rollout(_) => exit::ROLLOUT,
            Error::Timeout(_) => exit::TIMEOUT,
            Error::Interrupted(_) => exit::INTERRUPTED,
            Error::Io { .. } | Error::Aws { .. } | Error::Local { .. } => exit::FAILURE,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
