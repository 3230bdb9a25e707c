//! The environment's secrets as the tasks read them: SSM parameter names under its prefix,
//! what RDS accepts as a password, and which parameters the task definitions need.

use serde::Serialize;

use crate::aws::ssm::SecretInfo;
use crate::config::{self, Environment, ServiceName};
use crate::error::{Error, Result};
use crate::render::task_secrets;

/// `db/password` → `/learntrac/dev/db/password`; absolute names must be under the prefix.
pub fn parameter_name(env: &Environment, name: &str) -> Result<String> {
    let prefix = env.ssm_prefix();
    let full = if name.starts_with('/') {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    };
    let usage = |why: String| Error::Preflight {
        what: why,
        hint: format!("use a name under {prefix}/, e.g. db/password"),
    };
    if !full.starts_with(&format!("{prefix}/")) {
        return Err(usage(format!(
            "`{full}` is not under this environment's prefix {prefix}"
        )));
    }
    if let Some(why) = config::ssm_path_problem(&full) {
        return Err(usage(format!("`{full}`: {why}")));
    }
    Ok(full)
}

/// Why RDS would refuse `password` as a master password, if it would: RDS takes 8 to 128
/// printable ASCII characters except `/`, `@`, `"` and space — and says so only at apply,
/// after everything else was created.
pub fn rds_password_problem(password: &str) -> Option<String> {
    let n = password.chars().count();
    if !(8..=128).contains(&n) {
        return Some(format!("{n} characters; RDS takes 8 to 128"));
    }
    if let Some(c) = password
        .chars()
        .find(|c| !c.is_ascii_graphic() && *c != ' ' || matches!(c, '/' | '@' | '"' | ' '))
    {
        return Some(match c {
            ' ' => "it contains a space".to_string(),
            '/' | '@' | '"' => format!("it contains `{c}`"),
            _ => "it contains a character that is not printable ASCII".to_string(),
        });
    }
    None
}

/// A secret a task definition reads, and whether it exists in SSM.
#[derive(Debug, Serialize)]
pub struct Required {
    pub parameter: String,
    pub service: ServiceName,
    pub variable: String,
    pub present: bool,
}

/// Every parameter the environment's task definitions read, and whether it exists.
pub fn required(env: &Environment, params: &[SecretInfo]) -> Vec<Required> {
    env.services
        .iter()
        .flat_map(|(service, _)| {
            task_secrets(env, service)
                .into_iter()
                .map(move |(variable, parameter)| (service, variable, parameter))
        })
        .map(|(service, variable, parameter)| Required {
            present: params.iter().any(|p| p.name == parameter),
            parameter,
            service,
            variable,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::rds_password_problem;

    #[test]
    fn rds_password_rules() {
        assert_eq!(rds_password_problem("c0rrect-horse:battery!"), None);
        for (bad, why) in [
            ("short", "5 characters"),
            ("has/slash-in-it", "`/`"),
            ("has@at-in-it", "`@`"),
            ("has\"quote-in-it", "`\"`"),
            ("has a space", "space"),
            ("tab\tinside-it", "printable"),
            ("ünïcode-pass", "printable"),
        ] {
            let got = rds_password_problem(bad).unwrap_or_default();
            assert!(got.contains(why), "{bad}: {got}");
        }
        assert!(rds_password_problem(&"x".repeat(129)).is_some());
    }
}
