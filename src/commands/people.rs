//! `learntrac people import|list|remove ENV`: Trac's logins in the environment's
//! `TRAC_HTDIGEST` secret (src/people.rs). The Trac task reads the secret when it starts, so
//! a change reaches Trac with its next tasks (`--restart` starts them now).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::Ctx;
use crate::cli::PeopleCommand;
use crate::config::{self, Environment, ServiceName};
use crate::error::{Error, Result, exit};
use crate::people::{self, Person, Role};

pub fn run(cmd: &PeopleCommand, ctx: &Ctx) -> Result<i32> {
    let root = ctx.root()?;
    let env_name = match cmd {
        PeopleCommand::Import { env, .. }
        | PeopleCommand::List { env }
        | PeopleCommand::Remove { env, .. } => env,
    };
    let env = config::load(&root, env_name)?;
    let parameter = secret(&env)?;
    // Everything about the roster is checked before AWS is asked anything.
    let roster = match cmd {
        PeopleCommand::Import { roster, .. } => Some(read_roster(roster)?),
        _ => None,
    };
    let runtime =
        tokio::runtime::Runtime::new().map_err(|e| Error::io("start the async runtime", e))?;
    runtime.block_on(async {
        let config = crate::aws::sdk_config(&env).await;
        let ssm = aws_sdk_ssm::Client::new(&config);
        let current = crate::aws::ssm::get(&ssm, &parameter).await?;
        let (version, lines) = current
            .map(|(info, value)| (info.version, value))
            .unwrap_or_default();
        if lines.trim().is_empty() && !matches!(cmd, PeopleCommand::List { .. }) {
            return Err(Error::Preflight {
                what: format!("{parameter} holds no logins yet, so Trac has no administrator"),
                hint: format!(
                    "learntrac bootstrap {} --yes --trac-admin USER makes the administrator's login first",
                    env.environment
                ),
            });
        }
        let (new_lines, mut report, restart) = match cmd {
            PeopleCommand::List { .. } => {
                list(ctx, &parameter, &lines);
                return Ok(exit::OK);
            }
            PeopleCommand::Import {
                roster: path,
                passwords,
                dry_run,
                restart,
                ..
            } => {
                let roster = roster.unwrap_or_default();
                let merged = people::merge(&lines, &roster, || crate::bootstrap::password(12))?;
                people::check_size(&merged.lines)?;
                let teachers: Vec<&str> = roster
                    .iter()
                    .filter(|p| p.role == Role::Teacher)
                    .map(|p| p.login.as_str())
                    .collect();
                let added: Vec<&Person> = merged.added.iter().map(|(p, _)| p).collect();
                let mut report = json!({
                    "parameter": parameter,
                    "added": added,
                    "kept": merged.kept.iter().map(|p| &p.login).collect::<Vec<_>>(),
                    "teachers": teachers,
                    "logins": people::logins(&merged.lines).len(),
                    "bytes": merged.lines.len(),
                    "dry_run": dry_run,
                });
                if *dry_run || merged.added.is_empty() {
                    ctx.out.result(&report, || import_summary(&report));
                    return Ok(exit::OK);
                }
                // The passwords file is made before the secret changes (and removed if
                // that fails): people whose passwords nobody holds are never added.
                let file = passwords.clone().unwrap_or_else(|| passwords_beside(path));
                write_passwords(&file, &merged.added)?;
                report["passwords_file"] = json!(file.display().to_string());
                (merged.lines, report, *restart)
            }
            PeopleCommand::Remove { logins, restart, .. } => {
                let left = people::remove(&lines, logins)?;
                let report = json!({
                    "parameter": parameter,
                    "removed": logins,
                    "logins": people::logins(&left).len(),
                    "bytes": left.len(),
                });
                (left, report, *restart)
            }
        };
        let stored = crate::aws::ssm::put_growing(&ssm, &parameter, &new_lines).await;
        let stored = match stored {
            Ok(v) => v,
            Err(e) => {
                if let Some(f) = report["passwords_file"].as_str() {
                    let _ = std::fs::remove_file(f);
                }
                return Err(e);
            }
        };
        report["version"] = json!(stored);
        if stored != version + 1 {
            ctx.out.note(&format!(
                "{parameter} went from version {version} to {stored}: someone else changed it meanwhile, and this change replaced theirs — check with `learntrac people list {}`",
                env.environment
            ));
        }
        report["restarted"] = json!(false);
        if restart {
            let ecs = aws_sdk_ecs::Client::new(&config);
            let prefix = env.name_prefix();
            let service = format!("{prefix}-{}", ServiceName::Trac);
            crate::aws::ecs::force_new_deployment(&ecs, &format!("{prefix}-cluster"), &service)
                .await?;
            report["restarted"] = json!(true);
        }
        ctx.out.result(&report, || {
            let mut s = if report.get("removed").is_some() {
                format!(
                    "removed {} login(s); {} left",
                    report["removed"].as_array().map_or(0, Vec::len),
                    report["logins"]
                )
            } else {
                import_summary(&report)
            };
            s.push('\n');
            s.push_str(&if restart {
                "Trac's tasks are being replaced: the change applies as soon as the new ones serve (`learntrac status` shows them)".to_string()
            } else {
                let prefix = env.name_prefix();
                format!("the change reaches Trac when its tasks next start (--restart replaces them at once; now: `aws ecs update-service --cluster {prefix}-cluster --service {prefix}-trac --force-new-deployment`)")
            });
            s
        });
        Ok(exit::OK)
    })
}

/// The SSM parameter the Trac task reads as `TRAC_HTDIGEST`.
fn secret(env: &Environment) -> Result<String> {
    crate::render::secrets_of(env, ServiceName::Trac)
        .into_iter()
        .find(|(variable, _)| variable == "TRAC_HTDIGEST")
        .map(|(_, parameter)| parameter)
        .ok_or_else(|| Error::Preflight {
            what: format!(
                "environments/{}.yaml gives Trac no TRAC_HTDIGEST secret, so Trac has no logins",
                env.environment
            ),
            hint: format!(
                "add `TRAC_HTDIGEST: {}/trac/htdigest` under services.trac.secrets",
                env.ssm_prefix()
            ),
        })
}

fn read_roster(path: &Path) -> Result<Vec<Person>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("read the roster {}", path.display()), e))?;
    let people = people::parse_roster(&path.display().to_string(), &text)?;
    if people.is_empty() {
        return Err(Error::Invalid {
            what: format!("{}: no people after the header row", path.display()),
            hint: "one person per row: login[,role]".into(),
        });
    }
    Ok(people)
}

/// `roster.csv` → `roster-passwords.csv`, beside it.
fn passwords_beside(roster: &Path) -> PathBuf {
    let stem = roster
        .file_stem()
        .map_or("roster".into(), |s| s.to_string_lossy().into_owned());
    roster.with_file_name(format!("{stem}-passwords.csv"))
}

/// The new people's passwords, readable by this user only; never over an existing file
/// (an earlier import's passwords may not have been handed out yet).
fn write_passwords(file: &Path, added: &[(Person, String)]) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Error::Preflight {
                what: format!(
                    "{} exists (an earlier import's passwords?); nothing was changed",
                    file.display()
                ),
                hint: "hand out and delete it, or name another file with --passwords FILE".into(),
            },
            _ => Error::io(format!("create {}", file.display()), e),
        })?;
    let mut text = String::from("login,role,password\n");
    for (p, pw) in added {
        let role = if p.role == Role::Teacher {
            "teacher"
        } else {
            "student"
        };
        text.push_str(&format!("{},{role},{pw}\n", p.login));
    }
    f.write_all(text.as_bytes())
        .map_err(|e| Error::io(format!("write {}", file.display()), e))
}

fn import_summary(report: &serde_json::Value) -> String {
    let names = |key: &str| -> Vec<String> {
        report[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|v| {
                        v.get("login")
                            .unwrap_or(v)
                            .as_str()
                            .unwrap_or_default()
                            .to_string()
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let (added, kept, teachers) = (names("added"), names("kept"), names("teachers"));
    let verb = if report["dry_run"] == true {
        "would add"
    } else {
        "added"
    };
    let mut s = format!(
        "{verb} {} login(s){}; {} already had one (their passwords are unchanged)\n{} logins in {} ({} of {} bytes)",
        added.len(),
        if added.is_empty() {
            String::new()
        } else {
            format!(": {}", added.join(", "))
        },
        kept.len(),
        report["logins"],
        report["parameter"].as_str().unwrap_or_default(),
        report["bytes"],
        people::SSM_MAX_BYTES
    );
    if let Some(file) = report["passwords_file"].as_str() {
        s.push_str(&format!(
            "\ntheir passwords are in {file} (readable by you only): hand them out, then delete it"
        ));
    }
    if !teachers.is_empty() {
        s.push_str(&format!(
            "\nteachers: {} — signed in as Trac's administrator, add each to the `teachers` group on Admin → Permissions",
            teachers.join(", ")
        ));
    }
    s
}

fn list(ctx: &Ctx, parameter: &str, lines: &str) {
    let logins = people::logins(lines);
    let report = json!({
        "parameter": parameter,
        "administrator": logins.first(),
        "logins": logins,
        "bytes": lines.len(),
        "max_bytes": people::SSM_MAX_BYTES,
    });
    ctx.out.result(&report, || {
        let mut s = format!(
            "{} logins in {parameter} ({} of {} bytes)\n",
            logins.len(),
            lines.len(),
            people::SSM_MAX_BYTES
        );
        for (i, l) in logins.iter().enumerate() {
            s.push_str(&format!(
                "  {l}{}\n",
                if i == 0 {
                    "  (Trac's administrator)"
                } else {
                    ""
                }
            ));
        }
        s
    });
}
