//! The record of the last successful `terraform apply`: a hash of the rendered Terraform and
//! the stack's outputs, in an SSM parameter beside (not among) the environment's secrets. A
//! deploy whose rendered Terraform hashes the same skips Terraform: nothing it manages would
//! change, since images never pass through it (the services' task definitions are derived
//! from its templates by `deploy`).
//!
//! Kept correct by its writers: a full deploy forgets the record before `apply` and writes it
//! after the outputs are read, so an apply that fails half-way leaves none (the next deploy
//! takes the full path); `destroy` forgets it first. Two operators with different files get
//! different hashes; with the same files, the record is theirs to share.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Environment;
use crate::error::Result;
use crate::render::Files;
use crate::terraform::Outputs;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Applied {
    /// SHA-256 of every rendered file under `terraform/`, names included.
    pub hash: String,
    /// Seconds since the epoch.
    pub at: i64,
    pub outputs: Outputs,
}

/// `/PROJECT/.learntrac/ENV/last-apply`: outside `/PROJECT/ENV/`, where the tasks' secrets are.
pub fn parameter(env: &Environment) -> String {
    format!("/{}/.learntrac/{}/last-apply", env.project, env.environment)
}

pub fn hash(files: &Files) -> String {
    let mut h = Sha256::new();
    for (name, text) in files.iter().filter(|(n, _)| n.starts_with("terraform/")) {
        h.update(name.as_bytes());
        h.update([0]);
        h.update(text.len().to_le_bytes());
        h.update(text.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The record, or None when there is none (or it cannot be read as one).
pub async fn read(ssm: &aws_sdk_ssm::Client, env: &Environment) -> Result<Option<Applied>> {
    let got = crate::aws::ssm::get(ssm, &parameter(env)).await?;
    Ok(got.and_then(|(_, text)| serde_json::from_str(&text).ok()))
}

pub async fn write(ssm: &aws_sdk_ssm::Client, env: &Environment, applied: &Applied) -> Result<()> {
    let text = serde_json::to_string(applied).map_err(|e| crate::error::Error::Aws {
        what: "store the record of the apply".into(),
        which: parameter(env),
        cause: e.to_string(),
    })?;
    crate::aws::ssm::put(ssm, &parameter(env), &text).await?;
    Ok(())
}

pub async fn forget(ssm: &aws_sdk_ssm::Client, env: &Environment) -> Result<()> {
    crate::aws::ssm::delete(ssm, &parameter(env)).await?;
    Ok(())
}

/// Which path a deploy takes, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Path {
    /// `fast` (no Terraform) or `full`.
    pub path: &'static str,
    pub reason: String,
}

pub fn choose(
    full_asked: bool,
    hash: &str,
    record: Option<&Applied>,
    missing_service: Option<&str>,
) -> Path {
    let full = |reason: String| Path {
        path: "full",
        reason,
    };
    if full_asked {
        return full("--full".into());
    }
    let Some(record) = record else {
        return full("no record of a successful apply".into());
    };
    if record.hash != hash {
        return full("the rendered infrastructure changed since the last apply".into());
    }
    if let Some(name) = missing_service {
        return full(format!("the ECS service {name} does not exist"));
    }
    Path {
        path: "fast",
        reason: format!(
            "the rendered infrastructure is what was applied at {} (only images change)",
            crate::ui::utc(record.at)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(tf: &str) -> Files {
        Files::from([
            ("terraform/main.tf".to_string(), tf.to_string()),
            ("docker/trac.Dockerfile".to_string(), "FROM x".to_string()),
        ])
    }

    #[test]
    fn the_hash_covers_terraform_only() {
        let a = hash(&files("a"));
        assert_eq!(a, hash(&files("a")));
        assert_ne!(a, hash(&files("b")));
        let mut other_docker = files("a");
        other_docker.insert("docker/trac.Dockerfile".into(), "FROM y".into());
        assert_eq!(a, hash(&other_docker), "a Dockerfile is an image change");
    }

    #[test]
    fn only_an_unchanged_infrastructure_with_its_services_takes_the_fast_path() {
        let record = Applied {
            hash: "h".into(),
            at: 0,
            outputs: Outputs::default(),
        };
        assert_eq!(choose(false, "h", Some(&record), None).path, "fast");
        assert_eq!(choose(true, "h", Some(&record), None).path, "full");
        assert_eq!(choose(false, "h", None, None).path, "full");
        assert_eq!(choose(false, "x", Some(&record), None).path, "full");
        let gone = choose(false, "h", Some(&record), Some("p-local-trac"));
        assert_eq!(gone.path, "full");
        assert!(gone.reason.contains("p-local-trac"));
    }
}
