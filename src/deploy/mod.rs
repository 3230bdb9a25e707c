//! `learntrac deploy ENV`: preflight, render, build and push, terraform, redeploy, wait,
//! verify — each phase timed and reported, every failure with its own exit code. When the
//! rendered Terraform is what the last apply recorded (`record`), Terraform is skipped: the
//! fast path, since images never pass through it.

pub mod network;
pub mod preflight;
pub mod record;
pub mod report;
pub mod rollout;
pub mod verify;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use aws_sdk_ecs::types::TaskDefinition;
use serde::Serialize;

use crate::aws::cloud::{Aws, Cloud};
use crate::aws::ecs::family_revision;
use crate::cli::DeployArgs;
use crate::config::{Environment, ServiceName};
use crate::error::{Error, Result};
use crate::images::{self, ImageReport};
use crate::terraform::{Outputs, PlanSummary, Terraform};
use report::{PhaseTime, Reporter};
use rollout::{Expected, RolledOut, WaitOptions};
use verify::Verified;

const PLAN_FILE: &str = "learntrac.tfplan";

#[derive(Debug, Serialize)]
pub struct ServiceDeploy {
    pub service: ServiceName,
    pub ecs_name: String,
    pub image: Option<String>,
    pub task_definition: String,
    /// "new task definition" or "forced" (same task definition, new tasks).
    pub redeploy: String,
    pub rollout: Option<RolledOut>,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub ok: bool,
    pub environment: String,
    pub dry_run: bool,
    pub account: String,
    pub terraform_version: String,
    /// Fast (no Terraform) or full, and why.
    pub path: record::Path,
    pub url: Option<String>,
    pub seconds: f64,
    pub phases: Vec<PhaseTime>,
    pub plan: PlanSummary,
    pub images: Vec<ImageReport>,
    pub services: Vec<ServiceDeploy>,
    pub verify: Option<Verified>,
}

impl Summary {
    /// With the phase times and total duration filled in.
    fn finished(mut self, reporter: &Reporter) -> Self {
        self.phases = reporter.phases();
        self.seconds = (reporter.elapsed() * 10.0).round() / 10.0;
        self
    }
}

pub async fn deploy(
    root: &Path,
    env: &Environment,
    args: &DeployArgs,
    reporter: &Reporter,
) -> Result<Summary> {
    let scope: Vec<ServiceName> = match args.only {
        Some(s) => vec![s],
        None => ServiceName::ALL.to_vec(),
    };
    let prefix = env.name_prefix();
    let ecs_names: Vec<String> = scope.iter().map(|s| format!("{prefix}-{s}")).collect();
    let config = crate::aws::sdk_config(env).await;
    // Service events from before this moment are history, not news.
    let since = now_secs() - 5;

    let phase = reporter.phase("preflight");
    let ready = preflight::run(preflight::Checks {
        env,
        config: &config,
        docker: !args.dry_run,
        force: args.force,
        services: ecs_names.clone(),
    })
    .await?;
    let mut line = format!(
        "account {} as {}; {} {}",
        ready.account, ready.caller, ready.terraform.name, ready.terraform.version
    );
    for note in &ready.notes {
        line.push_str("; ");
        line.push_str(note);
    }
    phase.finish(&line);

    // A service left out by --only keeps the image it runs: it must run one.
    if let Some(svc) = ServiceName::ALL.into_iter().find(|s| {
        !scope.contains(s)
            && !ready
                .services
                .iter()
                .any(|st| st.name == format!("{prefix}-{s}"))
    }) && !args.dry_run
    {
        return Err(Error::Preflight {
            what: format!("{svc} has never been deployed, so --only cannot leave it out"),
            hint: "deploy both services once (without --only)".into(),
        });
    }
    let phase = reporter.phase("render");
    let files = crate::render::render(env, args.templates.as_deref())?;
    let out = crate::render::default_out_dir(root, &env.environment);
    let written = crate::render::write_tree(&out, &files)?;
    phase.finish(&format!(
        "{} files in {} ({} changed)",
        files.len(),
        out.display(),
        written.written.len()
    ));

    let ssm = aws_sdk_ssm::Client::new(&config);
    let ecs = aws_sdk_ecs::Client::new(&config);
    let hash = record::hash(&files);
    let (applied, running) = tokio::join!(record::read(&ssm, env), running(&ecs, &ready, &prefix));
    let (applied, running) = (applied?, running?);
    let missing = ServiceName::ALL
        .iter()
        .map(|s| format!("{prefix}-{s}"))
        .find(|n| !ready.services.iter().any(|st| &st.name == n));
    let path = record::choose(args.full, &hash, applied.as_ref(), missing.as_deref());
    reporter.info(
        "render",
        None,
        &format!("{} path: {}", path.path, path.reason),
    );

    let tf = Terraform::new(ready.terraform.clone(), &out.join("terraform"));
    let tf_line = reporter.line("terraform");
    let build = async {
        if args.dry_run {
            return Ok(Vec::new());
        }
        let phase = reporter.phase("build and push");
        let reports = images::images(
            root,
            env,
            &files,
            args.only,
            args.skip_build,
            true,
            reporter.progress(),
        )
        .await?;
        phase.finish(&format!("{} image(s) pushed", reports.len()));
        Ok::<_, Error>(reports)
    };
    let mut summary = Summary {
        ok: true,
        environment: env.environment.clone(),
        dry_run: args.dry_run,
        account: ready.account.clone(),
        terraform_version: format!("{} {}", ready.terraform.name, ready.terraform.version),
        path: path.clone(),
        url: None,
        seconds: 0.0,
        phases: Vec::new(),
        plan: PlanSummary::default(),
        images: Vec::new(),
        services: Vec::new(),
        verify: None,
    };
    let outputs = match (path.path, applied) {
        ("fast", Some(applied)) => {
            tf_line.finish("skipped: the fast path");
            summary.images = build.await?;
            applied.outputs
        }
        _ => {
            let full = FullPath {
                env,
                args,
                config: &config,
                ssm: &ssm,
                hash: &hash,
                tf: &tf,
                line: &tf_line,
                reporter,
            };
            let (outputs, plan, images) = full_path(full, build).await?;
            summary.plan = plan;
            summary.images = images;
            outputs
        }
    };
    summary.url = outputs.url.clone();
    if args.dry_run {
        return Ok(summary.finished(reporter));
    }
    let cluster = outputs
        .cluster_name
        .clone()
        .unwrap_or_else(|| format!("{prefix}-cluster"));

    let cloud = Aws::new(&config).await;
    let phase = reporter.phase("redeploy");
    let mut expected = Vec::new();
    // Terraform registers each service's template; the service runs the template as its own
    // family with the image pinned by digest, registered here only when that differs from
    // what runs. Terraform ignores which task definition a service runs.
    for svc in ServiceName::ALL {
        let out = outputs.services.get(&svc).ok_or_else(|| Error::Terraform {
            step: "output".into(),
            message: format!("the stack's `services` output has no {svc}"),
        })?;
        let in_scope = scope.contains(&svc);
        let pushed = summary
            .images
            .iter()
            .find(|r| r.service == svc)
            .and_then(|r| {
                Some(format!(
                    "{}@{}",
                    r.repository.as_ref()?,
                    r.push.as_ref()?.digest
                ))
            });
        let now = running.get(&svc);
        let Some(image) = pushed.or_else(|| now.and_then(crate::aws::ecs::first_image)) else {
            continue;
        };
        let (template, tags) =
            crate::aws::ecs::definition_and_tags(&ecs, &out.task_definition_arn).await?;
        let want = crate::aws::ecs::derive(&template, &format!("{prefix}-{svc}"), &image);
        let (task_definition, redeploy, deployment_id) = match now {
            Some(now) if crate::aws::ecs::same_tasks(now, &want) => {
                if !in_scope {
                    continue;
                }
                // Same tasks: only a forced deployment replaces them (new secrets, a moved
                // tag). Never both at once: two deployments confuse the rollout state.
                let id = cloud
                    .force_new_deployment(&cluster, &out.service_name)
                    .await?;
                let current = family_revision(now.task_definition_arn().unwrap_or_default());
                (current, "forced", id)
            }
            _ => {
                let registered = crate::aws::ecs::register(&ecs, &want, &tags).await?;
                let id = crate::aws::ecs::update_task_definition(
                    &ecs,
                    &cluster,
                    &out.service_name,
                    &registered,
                )
                .await?;
                (registered, "new task definition", id)
            }
        };
        reporter.info(
            "redeploy",
            Some(svc.as_str()),
            &format!("{task_definition} ({redeploy})"),
        );
        summary.services.push(ServiceDeploy {
            service: svc,
            ecs_name: out.service_name.clone(),
            image: Some(image),
            task_definition: task_definition.clone(),
            redeploy: redeploy.to_string(),
            rollout: None,
        });
        expected.push(Expected {
            service: svc.to_string(),
            ecs_name: out.service_name.clone(),
            task_definition,
            deployment_id,
        });
    }
    phase.finish(&format!("{} rollout(s) started", expected.len()));
    if args.no_wait {
        reporter.info(
            "redeploy",
            None,
            &format!(
                "--no-wait: `learntrac status {}` follows the rollouts",
                env.environment
            ),
        );
        return Ok(summary.finished(reporter));
    }

    let base = env
        .deploy
        .public_url
        .clone()
        .or_else(|| outputs.url.clone())
        .ok_or_else(|| Error::Terraform {
            step: "output".into(),
            message: "the stack has no `url` output to probe".into(),
        })?;
    let groups: Vec<(String, String)> = scope
        .iter()
        .filter_map(|s| {
            outputs
                .services
                .get(s)
                .map(|o| (s.to_string(), o.target_group_arn.clone()))
        })
        .collect();
    let options = WaitOptions {
        timeout: Duration::from_secs(args.timeout.unwrap_or(env.deploy.rollout_timeout)),
        poll: Duration::from_millis(args.poll_ms.max(10)),
        since,
    };
    let (mut rolled, verified) = wait_and_verify(
        &cloud,
        env,
        &cluster,
        &expected,
        &options,
        &Probe { groups, base },
        reporter,
    )
    .await?;
    for s in &mut summary.services {
        s.rollout = rolled.remove(&s.ecs_name);
    }
    summary.verify = Some(verified);
    Ok(summary.finished(reporter))
}

/// What a rollout is verified against: each service's target group (service, ARN) and the
/// base URL of the routed paths.
pub(crate) struct Probe {
    pub groups: Vec<(String, String)>,
    pub base: String,
}

/// The end of deploy and of rollback: wait until every new deployment is COMPLETED, then
/// verify its targets and the routed paths. Ctrl-C stops either wait, not the rollout.
/// Each rollout comes back under its ECS service's name.
pub(crate) async fn wait_and_verify(
    cloud: &dyn Cloud,
    env: &Environment,
    cluster: &str,
    expected: &[Expected],
    options: &WaitOptions,
    probe: &Probe,
    reporter: &Reporter,
) -> Result<(BTreeMap<String, RolledOut>, Verified)> {
    let phase = reporter.phase("wait");
    let rolled = interruptible(rollout::wait_all(
        cloud, cluster, expected, options, reporter,
    ))
    .await?;
    phase.finish("every rollout COMPLETED");
    let phase = reporter.phase("verify");
    let verified = interruptible(verify_all(
        cloud,
        env,
        &probe.groups,
        &probe.base,
        options.poll,
        reporter,
    ))
    .await?;
    phase.finish("targets healthy, every routed path answers");
    let rolled = rolled
        .into_iter()
        .map(|r| (r.ecs_name.clone(), r))
        .collect();
    Ok((rolled, verified))
}

async fn verify_all(
    cloud: &dyn Cloud,
    env: &Environment,
    groups: &[(String, String)],
    base: &str,
    poll: Duration,
    reporter: &Reporter,
) -> Result<Verified> {
    let timeout = Duration::from_secs(env.deploy.verify_timeout);
    let deadline = Instant::now() + timeout;
    let target_groups = verify::targets(cloud, groups, timeout, poll, reporter).await?;
    // Health paths and the front page (what every user meets first) must answer < 400.
    let health: Vec<String> = env
        .services
        .iter()
        .map(|(_, spec)| spec.health_check.path.clone())
        .chain([verify::FRONT_PAGE.to_string()])
        .collect();
    let paths = verify::probe_paths(env);
    let probes = verify::probe(base, &paths, &health, deadline, reporter).await?;
    Ok(Verified {
        base_url: base.to_string(),
        target_groups,
        probes,
    })
}

/// Ctrl-C while waiting stops the wait, not the rollout: ECS keeps the previous version
/// serving until the new one is healthy.
pub(crate) async fn interruptible<T>(
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    tokio::select! {
        r = work => r,
        _ = tokio::signal::ctrl_c() => Err(Error::Interrupted(
            "stopped; what was applied stays applied, a started rollout goes on in ECS, and the previous version keeps serving until the new one is healthy (`learntrac status ENV` follows it)".into(),
        )),
    }
}

struct FullPath<'a> {
    env: &'a Environment,
    args: &'a DeployArgs,
    config: &'a aws_config::SdkConfig,
    ssm: &'a aws_sdk_ssm::Client,
    /// Of the rendered Terraform, for the record of the apply.
    hash: &'a str,
    tf: &'a Terraform,
    line: &'a crate::ui::progress::Line,
    reporter: &'a Reporter,
}

/// Terraform: init (while the images build and push), plan, apply, outputs — and the record
/// of the apply that lets the next code-only deploy skip all of it.
async fn full_path(
    f: FullPath<'_>,
    build: impl std::future::Future<Output = Result<Vec<ImageReport>>>,
) -> Result<(Outputs, PlanSummary, Vec<ImageReport>)> {
    let FullPath {
        env,
        args,
        config,
        ssm,
        hash,
        tf,
        line,
        reporter,
    } = f;
    // A first deploy to ECR creates the repositories before anything can be pushed;
    // otherwise `terraform init` runs while the images build and push.
    // Terraform owns the ECR repositories even when images go to another registry: which
    // exist decides both the first deploy's targeted apply and adopting kept ones.
    let missing_repositories = if args.dry_run {
        Vec::new()
    } else {
        let ecr = aws_sdk_ecr::Client::new(config);
        let names: Vec<String> = ServiceName::ALL
            .iter()
            .map(|s| images::local_name(env, *s))
            .collect();
        crate::aws::ecr::missing_repositories(&ecr, &names).await?
    };
    let bootstrap = env.registry.is_none() && !missing_repositories.is_empty();
    let init = async {
        let phase = reporter.phase("terraform init");
        tf.init(line).await?;
        let current = tf.outputs(line).await?;
        if !args.dry_run {
            adopt_repositories(tf, line, env, &missing_repositories).await?;
        }
        if bootstrap {
            create_repositories(tf, line, reporter).await?;
        }
        phase.finish("initialised");
        Ok::<_, Error>(current)
    };
    let (current, images) = if bootstrap {
        let current = init.await?;
        (current, build.await?)
    } else {
        let (current, built) = tokio::join!(init, build);
        (current?, built?)
    };

    let phase = reporter.phase("terraform plan");
    let plan = tf.plan(&[], PLAN_FILE, &[], line).await?;
    phase.finish(&if plan.changes {
        format!(
            "{} to add, {} to change, {} to destroy",
            plan.add, plan.change, plan.destroy
        )
    } else {
        "no changes".to_string()
    });
    for d in &plan.destroyed {
        reporter.warn("terraform plan", None, &format!("destroys {d}"));
    }
    if args.dry_run {
        return Ok((current, plan, images));
    }
    if plan.destroy > 0 {
        confirm_destroy(&plan, args.yes)?;
    }
    let outputs = if plan.changes {
        let phase = reporter.phase("terraform apply");
        // Until the outputs are read back the record would vouch for what may not be there.
        record::forget(ssm, env).await?;
        let limit = Duration::from_secs(env.deploy.terraform_timeout);
        // Ctrl-C reaches terraform too (same process group), which stops cleanly and keeps
        // its state; a timeout drops the apply, which kills it (kill_on_drop).
        match tokio::time::timeout(limit, tf.apply(PLAN_FILE, line)).await {
            Ok(applied) => applied?,
            Err(_) => {
                return Err(Error::Timeout(format!(
                    "terraform apply did not finish within {}s (deploy.terraform_timeout); its state in {} holds what was done",
                    limit.as_secs(),
                    tf.dir.display()
                )));
            }
        }
        let outputs = tf.outputs(line).await?;
        phase.finish("applied");
        outputs
    } else {
        current
    };
    let applied = record::Applied {
        hash: hash.to_string(),
        at: now_secs(),
        outputs: outputs.clone(),
    };
    record::write(ssm, env, &applied).await?;
    line.finish("done");
    Ok((outputs, plan, images))
}

/// Creates the image repositories on a first deploy, so images can be pushed before the
/// full plan (which needs their digests).
async fn create_repositories(
    tf: &Terraform,
    line: &crate::ui::progress::Line,
    reporter: &Reporter,
) -> Result<()> {
    reporter.info(
        "terraform init",
        None,
        "first deploy: creating the image repositories before the push",
    );
    let targets: Vec<String> = ServiceName::ALL
        .iter()
        .map(|s| format!("aws_ecr_repository.{s}"))
        .collect();
    tf.plan(&[], PLAN_FILE, &targets, line).await?;
    tf.apply(PLAN_FILE, line).await
}

/// What each existing service runs now, as ECS describes its task definition.
async fn running(
    ecs: &aws_sdk_ecs::Client,
    ready: &preflight::Ready,
    prefix: &str,
) -> Result<BTreeMap<ServiceName, TaskDefinition>> {
    let mut out = BTreeMap::new();
    for svc in ServiceName::ALL {
        let arn = ready
            .services
            .iter()
            .find(|s| s.name == format!("{}-{svc}", prefix))
            .and_then(|s| s.task_definition_arn.clone());
        if let Some(arn) = arn {
            out.insert(svc, crate::aws::ecs::definition(ecs, &arn).await?);
        }
    }
    Ok(out)
}

/// A plan that destroys needs a yes: asked on a terminal, `--yes` anywhere else.
/// Repositories that exist but are not in the state (kept by `learntrac destroy`): adopted
/// again, with their lifecycle policies, instead of a create that would fail on them.
async fn adopt_repositories(
    tf: &Terraform,
    line: &crate::ui::progress::Line,
    env: &Environment,
    missing: &[String],
) -> Result<()> {
    let state = tf.state_list(line).await?;
    for svc in ServiceName::ALL {
        let name = images::local_name(env, svc);
        let address = format!("aws_ecr_repository.{svc}");
        if missing.contains(&name) || state.contains(&address) {
            continue;
        }
        line.message(&format!("adopting the existing ECR repository {name}"));
        tf.import(&address, &name, line).await?;
        let policy = format!("aws_ecr_lifecycle_policy.{svc}");
        if !state.contains(&policy) {
            tf.import(&policy, &name, line).await?;
        }
    }
    Ok(())
}

fn confirm_destroy(plan: &PlanSummary, yes: bool) -> Result<()> {
    if yes {
        return Ok(());
    }
    let list = plan
        .destroyed
        .iter()
        .map(|d| format!("    {d}"))
        .collect::<Vec<_>>()
        .join("\n");
    let prompt = format!(
        "The plan destroys {} resource(s):\n{list}\nApply it? Type `yes`: ",
        plan.destroy
    );
    if let crate::ui::Answer::Confirmed = crate::ui::ask(&prompt, "yes") {
        return Ok(());
    }
    Err(Error::Terraform {
        step: "apply".into(),
        message: format!(
            "not applied: the plan destroys {} resource(s):\n{list}\n    hint: review it with `learntrac deploy ENV --dry-run`, then pass --yes",
            plan.destroy
        ),
    })
}

pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}
