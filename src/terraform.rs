//! The `terraform` (or `tofu`) binary: found, version-checked, and driven non-interactively
//! over the rendered tree. Plans go to a file and exactly that file is applied.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::config::ServiceName;
use crate::error::{Error, Result};
use crate::ui::progress::Line;

/// Write-only attributes (`password_wo`, keeping the database password out of state) need 1.11.
const MINIMUM: (u64, u64) = (1, 11);

/// Lines of terraform's stderr kept for an error message.
const ERROR_TAIL: usize = 25;

#[derive(Debug, Clone)]
pub struct Binary {
    pub path: PathBuf,
    /// `terraform` or `tofu`.
    pub name: String,
    pub version: String,
}

/// `LEARNTRAC_TERRAFORM`, else `terraform`, else `tofu` on PATH; its version must be recent enough.
pub async fn find() -> Result<Binary> {
    let candidates: Vec<PathBuf> = match std::env::var_os("LEARNTRAC_TERRAFORM") {
        Some(p) => vec![PathBuf::from(p)],
        None => ["terraform", "tofu"]
            .iter()
            .filter_map(|n| on_path(n))
            .collect(),
    };
    let Some(path) = candidates.into_iter().next() else {
        return Err(Error::Preflight {
            what: "neither terraform nor tofu is on PATH".into(),
            hint: "install Terraform ≥ 1.11 (https://developer.hashicorp.com/terraform/install) \
                   or OpenTofu, or set LEARNTRAC_TERRAFORM to its path"
                .into(),
        });
    };
    let out = tokio::process::Command::new(&path)
        .args(["version", "-json"])
        .output()
        .await
        .map_err(|e| Error::Preflight {
            what: format!("cannot run {}: {e}", path.display()),
            hint: "check LEARNTRAC_TERRAFORM or the terraform on PATH".into(),
        })?;
    #[derive(Deserialize)]
    struct Version {
        terraform_version: String,
    }
    let version = serde_json::from_slice::<Version>(&out.stdout)
        .map(|v| v.terraform_version)
        .map_err(|_| Error::Preflight {
            what: format!("{} version -json gave no version", path.display()),
            hint: "install Terraform ≥ 1.11 or OpenTofu".into(),
        })?;
    let name = path
        .file_name()
        .map_or("terraform".into(), |n| n.to_string_lossy().into_owned());
    if !at_least(&version, MINIMUM) {
        return Err(Error::Preflight {
            what: format!("{name} {version} is too old: the rendered stack needs ≥ 1.11"),
            hint: "upgrade Terraform (https://developer.hashicorp.com/terraform/install)".into(),
        });
    }
    Ok(Binary {
        path,
        name,
        version,
    })
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn at_least(version: &str, (major, minor): (u64, u64)) -> bool {
    let mut parts = version
        .trim_start_matches('v')
        .split(['.', '-'])
        .map(|p| p.parse::<u64>().unwrap_or(0));
    let (a, b) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (a, b) >= (major, minor)
}

/// What a saved plan will do.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PlanSummary {
    /// False when the plan has no changes (`-detailed-exitcode` 0).
    pub changes: bool,
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
    /// Addresses deleted or replaced.
    pub destroyed: Vec<String>,
    /// Addresses changed in place.
    pub changed: Vec<String>,
    /// Services whose template task definition gets a new revision (deploy then registers
    /// the service's own revision from it).
    pub new_task_definitions: Vec<ServiceName>,
}

/// Per service, what the stack's `services` output holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceOutput {
    pub service_name: String,
    pub task_definition_arn: String,
    pub target_group_arn: String,
    pub repository_url: String,
    pub image: String,
}

/// The stack's outputs that deploy uses.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Outputs {
    pub url: Option<String>,
    pub cluster_name: Option<String>,
    pub services: BTreeMap<ServiceName, ServiceOutput>,
}

pub struct Terraform {
    pub binary: Binary,
    /// The rendered `terraform/` folder.
    pub dir: PathBuf,
}

impl Terraform {
    pub fn new(binary: Binary, dir: &Path) -> Self {
        Terraform {
            binary,
            dir: dir.to_path_buf(),
        }
    }

    /// Runs one terraform command; stdout lines go to `line`, filtered by `show`.
    /// Returns (exit code, stdout).
    async fn run(
        &self,
        step: &str,
        args: &[String],
        line: &Line,
        show: fn(&str) -> bool,
    ) -> Result<(i32, String)> {
        let mut child = tokio::process::Command::new(&self.binary.path)
            .args(args)
            .current_dir(&self.dir)
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::Terraform {
                step: step.into(),
                message: format!("cannot start {}: {e}", self.binary.path.display()),
            })?;
        let stderr = child.stderr.take();
        let err_task = tokio::spawn(async move {
            let mut text = String::new();
            if let Some(s) = stderr {
                let mut lines = BufReader::new(s).lines();
                while let Ok(Some(l)) = lines.next_line().await {
                    text.push_str(&l);
                    text.push('\n');
                }
            }
            text
        });
        let mut stdout_text = String::new();
        if let Some(out) = child.stdout.take() {
            let mut lines = BufReader::new(out).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                // `-json` commands stream one object per line; people read its @message.
                let text = json_message(&l).unwrap_or_else(|| l.trim().to_string());
                if show(&text) {
                    line.message(&text);
                }
                stdout_text.push_str(&l);
                stdout_text.push('\n');
            }
        }
        let status = child.wait().await.map_err(|e| Error::Terraform {
            step: step.into(),
            message: e.to_string(),
        })?;
        let stderr_text = err_task.await.unwrap_or_default();
        let code = status.code().unwrap_or(-1);
        // `plan -detailed-exitcode` answers 2 for "changes present".
        if code != 0 && !(step == "plan" && code == 2) {
            return Err(Error::Terraform {
                step: step.into(),
                message: format!(
                    "{} {} exited with {code} in {}:\n{}",
                    self.binary.name,
                    args.first().map_or("", String::as_str),
                    self.dir.display(),
                    tail(
                        &match (stderr_text.trim().is_empty(), json_errors(&stdout_text)) {
                            (false, _) => stderr_text,
                            (true, errors) if !errors.trim().is_empty() => errors,
                            // Not a -json command and nothing on stderr: its own words.
                            (true, _) => stdout_text.clone(),
                        },
                        ERROR_TAIL
                    )
                ),
            });
        }
        Ok((code, stdout_text))
    }

    pub async fn init(&self, line: &Line) -> Result<()> {
        let args = strings(&["init", "-input=false", "-no-color"]);
        self.run("init", &args, line, |l| l.starts_with("- Installing"))
            .await
            .map(|_| ())
    }

    /// `plan -out=FILE -detailed-exitcode` with the given variables, then what it does.
    pub async fn plan(
        &self,
        vars: &[(String, String)],
        plan_file: &str,
        targets: &[String],
        line: &Line,
    ) -> Result<PlanSummary> {
        // -json streams each planned change: no second `show -json` (another ~2 s of
        // provider schema loading) to learn what the plan does.
        let mut args = strings(&[
            "plan",
            "-input=false",
            "-no-color",
            "-json",
            "-detailed-exitcode",
        ]);
        args.push(format!("-out={plan_file}"));
        for (k, v) in vars {
            args.push("-var".into());
            args.push(format!("{k}={v}"));
        }
        for t in targets {
            args.push(format!("-target={t}"));
        }
        let (code, stream) = self
            .run("plan", &args, line, |l| l.contains("Refreshing state"))
            .await?;
        let mut summary = summarize(&stream);
        summary.changes = code == 2;
        Ok(summary)
    }

    /// `plan -destroy -out=FILE`: the addresses it would delete, every one of them.
    pub async fn plan_destroy(&self, plan_file: &str, line: &Line) -> Result<Vec<String>> {
        let args = strings(&[
            "plan",
            "-destroy",
            "-input=false",
            "-no-color",
            "-json",
            &format!("-out={plan_file}"),
        ]);
        let (_, stream) = self
            .run("plan", &args, line, |l| l.contains("Refreshing state"))
            .await?;
        Ok(stream
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["type"] == "planned_change" && v["change"]["action"] == "delete")
            .filter_map(|v| v["change"]["resource"]["addr"].as_str().map(String::from))
            .collect())
    }

    /// Every address in the state.
    pub async fn state_list(&self, line: &Line) -> Result<Vec<String>> {
        match self
            .run("state list", &strings(&["state", "list"]), line, |_| false)
            .await
        {
            Ok((_, out)) => Ok(out.lines().map(str::to_string).collect()),
            // Before the first apply there is no state to list.
            Err(Error::Terraform { message, .. }) if message.contains("No state file") => {
                Ok(Vec::new())
            }
            Err(e) => Err(e),
        }
    }

    /// Adopts an existing object into the state under `address`.
    pub async fn import(&self, address: &str, id: &str, line: &Line) -> Result<()> {
        let args = strings(&["import", "-input=false", "-no-color", address, id]);
        self.run("import", &args, line, |l| {
            l.starts_with("Import successful")
        })
        .await
        .map(|_| ())
    }

    /// Forgets `addresses` without touching what they are (kept outside Terraform).
    pub async fn state_rm(&self, addresses: &[String], line: &Line) -> Result<()> {
        if addresses.is_empty() {
            return Ok(());
        }
        let mut args = strings(&["state", "rm"]);
        args.extend(addresses.iter().cloned());
        self.run("state rm", &args, line, |_| false)
            .await
            .map(|_| ())
    }

    pub async fn apply(&self, plan_file: &str, line: &Line) -> Result<()> {
        let args = strings(&["apply", "-input=false", "-no-color", plan_file]);
        self.run("apply", &args, line, |l| {
            l.contains("complete after") || l.starts_with("Apply complete")
        })
        .await
        .map(|_| ())
    }

    /// The stack's outputs; empty before the first apply.
    pub async fn outputs(&self, line: &Line) -> Result<Outputs> {
        let (_, json) = self
            .run(
                "output",
                &strings(&["output", "-json", "-no-color"]),
                line,
                |_| false,
            )
            .await?;
        parse_outputs(&json).map_err(|e| Error::Terraform {
            step: "output".into(),
            message: format!("unexpected outputs: {e}"),
        })
    }
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| (*s).to_string()).collect()
}

/// The last `n` lines; a provider's crash puts its cause at the top (`panic: …` and the
/// frames under it), so those come first.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let from = lines.len().saturating_sub(n);
    let mut shown: Vec<&str> = Vec::new();
    if let Some(panic) = lines
        .iter()
        .position(|l| l.trim_start().starts_with("panic:"))
        && panic < from
    {
        let end = (panic + PANIC_LINES).min(from);
        shown.extend(&lines[panic..end]);
        shown.push("…");
    }
    shown.extend(&lines[from..]);
    shown
        .iter()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Lines kept from a provider's panic: the message and the frames that name the resource.
const PANIC_LINES: usize = 8;

/// `@message` of one `-json` output line.
fn json_message(line: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    v["@message"].as_str().map(String::from)
}

/// Error diagnostics of a `-json` output stream, for the error message.
fn json_errors(stream: &str) -> String {
    stream
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["@level"] == "error")
        .map(|v| {
            let d = &v["diagnostic"];
            format!(
                "{} {}",
                v["@message"].as_str().unwrap_or_default(),
                d["detail"].as_str().unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// What a `plan -json` stream says the plan does.
pub fn summarize(stream: &str) -> PlanSummary {
    let mut s = PlanSummary::default();
    for v in stream
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
    {
        match v["type"].as_str() {
            Some("change_summary") => {
                let count =
                    |k: &str| usize::try_from(v["changes"][k].as_u64().unwrap_or(0)).unwrap_or(0);
                s.add = count("add");
                s.change = count("change");
            }
            Some("planned_change") => {
                let address = v["change"]["resource"]["addr"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let action = v["change"]["action"].as_str().unwrap_or_default();
                let task_definition = address.ends_with("aws_ecs_task_definition.main");
                // A new task definition revision "replaces" the old one, which skip_destroy
                // keeps registered: that is a deploy, not a destroy to confirm.
                if matches!(action, "delete" | "replace") && !task_definition {
                    s.destroyed.push(address.clone());
                }
                if action == "update" {
                    s.changed.push(address.clone());
                }
                if matches!(action, "create" | "replace") && task_definition {
                    for svc in ServiceName::ALL {
                        if address == format!("module.{svc}_service.aws_ecs_task_definition.main") {
                            s.new_task_definitions.push(svc);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    s.destroy = s.destroyed.len();
    s
}

fn parse_outputs(json: &str) -> Result<Outputs, serde_json::Error> {
    #[derive(Deserialize)]
    struct Wrapped<T> {
        value: T,
    }
    #[derive(Deserialize, Default)]
    struct All {
        url: Option<Wrapped<String>>,
        cluster_name: Option<Wrapped<String>>,
        services: Option<Wrapped<BTreeMap<ServiceName, ServiceOutput>>>,
    }
    let all: All = serde_json::from_str(json)?;
    Ok(Outputs {
        url: all.url.map(|w| w.value),
        cluster_name: all.cluster_name.map(|w| w.value),
        services: all.services.map(|w| w.value).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_major_and_minor() {
        assert!(at_least("1.11.4", (1, 11)));
        assert!(at_least("v1.12.0-beta1", (1, 11)));
        assert!(!at_least("1.10.5", (1, 11)));
        assert!(at_least("2.0.0", (1, 11)));
    }

    #[test]
    fn a_provider_crash_shows_its_panic_before_the_tail() {
        let mut text = String::from(
            "Stack trace from the terraform-provider-aws plugin:\n\npanic: runtime error: invalid memory address\ngoroutine 1 [running]:\n",
        );
        for i in 0..40 {
            text.push_str(&format!("frame {i}\n"));
        }
        text.push_str("Error: The terraform-provider-aws_v5.100.0_x5 plugin crashed!\n");
        let shown = tail(&text, 5);
        assert!(shown.starts_with("    panic: runtime error"), "{shown}");
        assert!(shown.contains("    …\n"), "{shown}");
        assert!(shown.ends_with("plugin crashed!"), "{shown}");
        assert!(!tail("a\nb\nc", 5).contains('…'));
    }

    #[test]
    fn a_plan_summary_finds_destroys_and_new_task_definitions() {
        let stream = r#"{"@level":"info","@message":"Terraform 1.11.4","type":"version"}
{"type":"planned_change","change":{"resource":{"addr":"module.trac_service.aws_ecs_task_definition.main"},"action":"replace"}}
{"type":"planned_change","change":{"resource":{"addr":"module.learntrac_service.aws_ecs_service.main"},"action":"update"}}
{"type":"planned_change","change":{"resource":{"addr":"aws_ecr_repository.trac"},"action":"create"}}
{"type":"planned_change","change":{"resource":{"addr":"aws_elasticache_replication_group.redis"},"action":"replace"}}
{"type":"change_summary","changes":{"add":3,"change":1,"import":0,"remove":2,"operation":"plan"}}"#;
        let s = summarize(stream);
        assert_eq!((s.add, s.change, s.destroy), (3, 1, 1));
        // A new task definition revision is a deploy, not a destroy to confirm.
        assert_eq!(s.destroyed, vec!["aws_elasticache_replication_group.redis"]);
        assert_eq!(
            s.changed,
            vec!["module.learntrac_service.aws_ecs_service.main"]
        );
        assert_eq!(s.new_task_definitions, vec![ServiceName::Trac]);
    }
}
