//! `learntrac destroy ENV`: the environment's stack taken down through Terraform, as
//! `deploy.sh ENV destroy` did, with what a person needs to know before and after. Plans
//! with `-destroy` and lists what goes; needs the environment's name typed on a terminal or
//! `--yes`; refuses production unless `--allow-production`. The ECR repositories (with their
//! images) and the SSM secrets stay unless asked for: the repositories are forgotten by
//! Terraform (the next deploy adopts them again), the secrets were never Terraform's.
//! Afterwards it says what remains.

use serde::Serialize;

use crate::cli::DestroyArgs;
use crate::config::Environment;
use crate::deploy::report::Reporter;
use crate::error::{Error, Result};
use crate::terraform::Terraform;

const PLAN_FILE: &str = "destroy.tfplan";

#[derive(Debug, Serialize)]
pub struct Summary {
    pub ok: bool,
    pub environment: String,
    /// Addresses Terraform deleted.
    pub destroyed: Vec<String>,
    /// What is still there, and why.
    pub remaining: Vec<String>,
    /// SSM parameters deleted (`--secrets`): names only, never values.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets_deleted: Vec<String>,
    pub seconds: f64,
}

/// The ECR resources of the stack (repositories and their lifecycle policies).
fn ecr_addresses(state: &[String]) -> Vec<String> {
    state
        .iter()
        .filter(|a| {
            a.starts_with("aws_ecr_repository.") || a.starts_with("aws_ecr_lifecycle_policy.")
        })
        .cloned()
        .collect()
}

pub async fn destroy(
    root: &std::path::Path,
    env: &Environment,
    args: &DestroyArgs,
    reporter: &Reporter,
) -> Result<Summary> {
    if env.is_production() && !args.allow_production {
        return Err(Error::Invalid {
            what: format!("refusing to destroy {}: it is production", env.environment),
            hint: "pass --allow-production if that is really meant".into(),
        });
    }
    let phase = reporter.phase("preflight");
    let config = crate::aws::sdk_config(env).await;
    let (identity, binary) =
        tokio::join!(crate::aws::sts::identity(&config), crate::terraform::find());
    let identity = identity?;
    crate::deploy::preflight::account(env, &identity)?;
    let binary = binary?;
    phase.finish(&format!("account {} as {}", identity.account, identity.arn));

    let phase = reporter.phase("render");
    let files = crate::render::render(env, args.templates.as_deref())?;
    let out = crate::render::default_out_dir(root, &env.environment);
    crate::render::write_tree(&out, &files)?;
    phase.finish(&out.display().to_string());

    let tf = Terraform::new(binary, &out.join("terraform"));
    let line = reporter.line("terraform");
    let phase = reporter.phase("terraform init");
    tf.init(&line).await?;
    let state = tf.state_list(&line).await?;
    phase.finish(&format!("{} resource(s) in the state", state.len()));

    let phase = reporter.phase("terraform plan -destroy");
    let planned = tf.plan_destroy(PLAN_FILE, &line).await?;
    let keep = if args.images {
        Vec::new()
    } else {
        ecr_addresses(&state)
    };
    let going: Vec<String> = planned
        .iter()
        .filter(|a| !keep.contains(a))
        .cloned()
        .collect();
    phase.finish(&format!("{} to destroy", going.len()));

    let mut remaining = Vec::new();
    if let Some(s3) = &env.terraform.s3 {
        remaining.push(format!(
            "state bucket s3://{} (its state object {} is emptied, not deleted)",
            s3.bucket, s3.key
        ));
    }
    if !keep.is_empty() {
        remaining.push(format!(
            "ECR repositories {}-* with their images (--images deletes them; the next deploy adopts them again)",
            env.name_prefix()
        ));
    }
    if !args.secrets {
        remaining.push(format!(
            "SSM parameters under {}/ (--secrets deletes them)",
            env.ssm_prefix()
        ));
    }
    remaining.push(
        "the KMS keys of Trac's files and of the alerts, scheduled for deletion in 30 days (until then `aws kms cancel-key-deletion` brings one back, and the backups it encrypts stay readable)"
            .to_string(),
    );
    remaining.push(format!(
        "the task definitions {}-*, deregistered (ECS keeps INACTIVE revisions; none can run or be rolled back to)",
        env.name_prefix()
    ));
    if env.is_production() {
        remaining.push(
            "the recovery points of Trac's files in AWS Backup's default vault (the daily EFS backups, kept 35 days; delete them there sooner)"
                .to_string(),
        );
        remaining.push(format!(
            "the database's final snapshot {}-db-final-<when the database was made> (RDS keeps it until you delete it)",
            env.name_prefix()
        ));
    }

    // Every parameter under the prefix goes with --secrets, those bootstrap made and those
    // set by hand (CHAT_API_KEY…): each is named before anyone confirms.
    let ssm = aws_sdk_ssm::Client::new(&config);
    let secrets: Vec<String> = if args.secrets {
        crate::aws::ssm::list(&ssm, &env.ssm_prefix())
            .await?
            .into_iter()
            .map(|p| p.name)
            .collect()
    } else {
        Vec::new()
    };

    if going.is_empty() && state.is_empty() && secrets.is_empty() {
        return Ok(Summary {
            ok: true,
            environment: env.environment.clone(),
            destroyed: Vec::new(),
            remaining,
            secrets_deleted: Vec::new(),
            seconds: reporter.elapsed(),
        });
    }
    confirm(env, &going, &keep, &secrets, &remaining, args.yes)?;

    if !keep.is_empty() {
        // Forgotten by Terraform, kept in AWS: the plan made before no longer matches.
        tf.state_rm(&keep, &line).await?;
        tf.plan_destroy(PLAN_FILE, &line).await?;
    }
    // A deploy must not take the fast path onto a stack that is going.
    crate::deploy::record::forget(&ssm, env).await?;
    let phase = reporter.phase("terraform apply -destroy");
    if let Err(e) = tf.apply(PLAN_FILE, &line).await {
        return Err(explain(env, e));
    }
    phase.finish(&format!("{} destroyed", going.len()));

    // The revisions deploy registered (and the templates Terraform keeps registered) name
    // roles, a file system and secrets that are gone: none may run again, nor be a
    // rollback's target.
    let phase = reporter.phase("task definitions");
    let ecs = aws_sdk_ecs::Client::new(&config);
    let mut deregistered = 0;
    for service in crate::config::ServiceName::ALL {
        for family in [
            format!("{}-{service}", env.name_prefix()),
            format!("{}-{service}-template", env.name_prefix()),
        ] {
            for revision in crate::aws::ecs::revisions(&ecs, &family).await? {
                crate::aws::ecs::deregister(&ecs, &revision).await?;
                deregistered += 1;
            }
        }
    }
    phase.finish(&format!("{deregistered} revision(s) deregistered"));

    let mut secrets_deleted = Vec::new();
    if args.secrets {
        let phase = reporter.phase("secrets");
        let mut deleted = Vec::new();
        for name in &secrets {
            if crate::aws::ssm::delete(&ssm, name).await? {
                deleted.push(name.clone());
            }
        }
        phase.finish(&format!("{} SSM parameter(s) deleted", deleted.len()));
        secrets_deleted = deleted;
    }
    Ok(Summary {
        ok: true,
        environment: env.environment.clone(),
        destroyed: going,
        remaining,
        secrets_deleted,
        seconds: reporter.elapsed(),
    })
}

/// The environment's name typed on a terminal, or --yes; nothing else goes ahead.
fn confirm(
    env: &Environment,
    going: &[String],
    keep: &[String],
    secrets: &[String],
    remaining: &[String],
    yes: bool,
) -> Result<()> {
    let mut list = format!(
        "destroying {} removes {} resource(s):\n",
        env.environment,
        going.len()
    );
    for g in going {
        list.push_str(&format!("    - {g}\n"));
    }
    for k in keep {
        list.push_str(&format!("    kept: {k}\n"));
    }
    for name in secrets {
        list.push_str(&format!("    - SSM parameter {name} (--secrets)\n"));
    }
    for r in remaining {
        list.push_str(&format!("    remains: {r}\n"));
    }
    if env.is_production() {
        list.push_str(&format!(
            "    note: the database and load balancer have deletion protection: lift it first \
             (aws rds modify-db-instance --db-instance-identifier {p}-db --no-deletion-protection \
             --apply-immediately; aws elbv2 modify-load-balancer-attributes --load-balancer-arn \
             ARN --attributes Key=deletion_protection.enabled,Value=false), or Terraform stops \
             there; RDS takes the final snapshot {p}-db-final-<when the database was made>\n",
            p = env.name_prefix()
        ));
    }
    if yes {
        eprint!("{list}");
        return Ok(());
    }
    let prompt = format!(
        "{list}Type the environment's name ({}) to go on: ",
        env.environment
    );
    match crate::ui::ask(&prompt, &env.environment) {
        crate::ui::Answer::Confirmed => Ok(()),
        crate::ui::Answer::Refused => Err(Error::Invalid {
            what: "not confirmed; nothing was changed".into(),
            hint: format!("type `{}` exactly, or pass --yes", env.environment),
        }),
        crate::ui::Answer::NoTerminal => Err(Error::Invalid {
            what: format!("{list}not confirmed (no terminal to ask on); nothing was changed"),
            hint: "pass --yes (in CI) after reading the list above".into(),
        }),
    }
}

/// Terraform's failure, with the fix for the failures a person can lift.
fn explain(env: &Environment, e: Error) -> Error {
    let text = e.to_string();
    if text.contains("deletion protection") || text.contains("DeletionProtection") {
        return Error::Terraform {
            step: "apply -destroy".into(),
            message: format!(
                "{text}\n    hint: deletion protection is on for {p}'s database or load balancer; \
                 lift it (see `learntrac destroy --help`) and run destroy again: what was \
                 already destroyed stays destroyed",
                p = env.name_prefix()
            ),
        };
    }
    e
}
