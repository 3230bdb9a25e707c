//! `learntrac secrets set|get|list|delete ENV [NAME]`: SSM SecureStrings under the
//! environment's prefix. Values come from stdin or a hidden prompt, never the command
//! line, and are printed only by `get --reveal`.

use std::io::{IsTerminal, Read};

use crate::Ctx;
use crate::aws::ssm::{self, SecretInfo};
use crate::cli::SecretsCommand;
use crate::config::{self, Environment};
use crate::error::{Error, Result, exit};
use crate::secrets::{Required, parameter_name, rds_password_problem, required};

pub fn run(cmd: &SecretsCommand, ctx: &Ctx) -> Result<i32> {
    let root = ctx.root()?;
    let env_name = match cmd {
        SecretsCommand::Set { env, .. }
        | SecretsCommand::Get { env, .. }
        | SecretsCommand::List { env }
        | SecretsCommand::Delete { env, .. } => env,
    };
    let env = config::load(&root, env_name)?;
    let runtime =
        tokio::runtime::Runtime::new().map_err(|e| Error::io("start the async runtime", e))?;
    runtime.block_on(async {
        let client = aws_sdk_ssm::Client::new(&crate::aws::sdk_config(&env).await);
        match cmd {
            SecretsCommand::Set { name, .. } => {
                let name = parameter_name(&env, name)?;
                let value = read_value(&name)?;
                let database = name == env.database.password_parameter;
                if database && let Some(why) = rds_password_problem(&value) {
                    return Err(Error::Invalid {
                        what: format!("RDS would refuse this as the master password ({why}); nothing was stored"),
                        hint: "use 8-128 printable ASCII characters without / @ \" or spaces".into(),
                    });
                }
                let rotation = database && ssm::get(&client, &name).await?.is_some();
                let version = ssm::put(&client, &name, &value).await?;
                ctx.out.result(&serde_json::json!({"name": name, "version": version}), || {
                    format!("stored {name} (version {version})")
                });
                if rotation {
                    // RDS takes a new master password only when its version changes;
                    // tasks read the parameter at start, so both must move together.
                    ctx.out.note(&format!(
                        "the database keeps its old password until it gets the new one: set database.password_version to {} in environments/{}.yaml and run `learntrac deploy {}` (new tasks read the new password as soon as they start)",
                        env.database.password_version + 1,
                        env.environment,
                        env.environment
                    ));
                }
                Ok(exit::OK)
            }
            SecretsCommand::Get { name, reveal, .. } => {
                let name = parameter_name(&env, name)?;
                let Some((info, value)) = ssm::get(&client, &name).await? else {
                    return Err(Error::Aws {
                        what: "read the secret".into(),
                        which: name.clone(),
                        cause: format!("it does not exist; create it with `learntrac secrets set {} {}`", env.environment, relative(&env, &name)),
                    });
                };
                let mut doc = serde_json::to_value(&info).unwrap_or_default();
                if *reveal {
                    doc["value"] = serde_json::Value::String(value.clone());
                }
                ctx.out.result(&doc, || {
                    if *reveal {
                        value.clone()
                    } else {
                        format!("{} version {} (value hidden; --reveal prints it)", info.name, info.version)
                    }
                });
                Ok(exit::OK)
            }
            SecretsCommand::List { .. } => {
                let params = ssm::list(&client, &env.ssm_prefix()).await?;
                let required = required(&env, &params);
                ctx.out.result(
                    &serde_json::json!({"prefix": env.ssm_prefix(), "parameters": params, "required": required}),
                    || human_list(&env, &params, &required),
                );
                Ok(if required.iter().all(|r| r.present) { exit::OK } else { exit::PREFLIGHT })
            }
            SecretsCommand::Delete { name, .. } => {
                let name = parameter_name(&env, name)?;
                let deleted = ssm::delete(&client, &name).await?;
                ctx.out.result(&serde_json::json!({"name": name, "deleted": deleted}), || {
                    if deleted { format!("deleted {name}") } else { format!("{name} did not exist") }
                });
                Ok(exit::OK)
            }
        }
    })
}

fn relative(env: &Environment, name: &str) -> String {
    name.strip_prefix(&format!("{}/", env.ssm_prefix()))
        .unwrap_or(name)
        .to_string()
}

fn human_list(env: &Environment, params: &[SecretInfo], required: &[Required]) -> String {
    let mut s = format!(
        "{:<50} {:>7}  {}\n",
        "NAME", "VERSION", "LAST MODIFIED (UTC, s since epoch)"
    );
    for p in params {
        s.push_str(&format!(
            "{:<50} {:>7}  {}\n",
            p.name,
            p.version,
            p.last_modified.map_or("-".into(), |t| t.to_string())
        ));
    }
    let missing: Vec<&Required> = required.iter().filter(|r| !r.present).collect();
    if !missing.is_empty() {
        s.push_str("\nmissing, but read by the task definitions:\n");
        for r in missing {
            s.push_str(&format!(
                "  {} ({} {})  ->  learntrac secrets set {} {}\n",
                r.parameter,
                r.service,
                r.variable,
                env.environment,
                relative(env, &r.parameter)
            ));
        }
    }
    s
}

/// The value: piped stdin, or a prompt that does not echo.
fn read_value(name: &str) -> Result<String> {
    let value = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("value for {name} (input hidden): "))
            .map_err(|e| Error::io("read the value", e))?
    } else {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Error::io("read the value from stdin", e))?;
        s.strip_suffix('\n')
            .map(|t| t.strip_suffix('\r').unwrap_or(t))
            .unwrap_or(&s)
            .to_string()
    };
    if value.is_empty() {
        return Err(Error::Preflight {
            what: format!("no value for {name}"),
            hint: "pipe it in (e.g. `pass show x | learntrac secrets set ENV NAME`) or type it at the prompt".into(),
        });
    }
    Ok(value)
}
