//! `learntrac deploy ENV`: preflight, render, build and push, terraform, redeploy, wait,
//! verify — each phase timed and reported, every failure with its own exit code.

pub mod network;
pub mod preflight;
pub mod report;
pub mod rollout;
pub mod verify;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

use aws_sdk_ecs::types::TaskDefinition;
use serde::Serialize;

use crate::aws::cloud::{Aws, Cloud};
use crate::aws::ecs::family_revision;
use crate::cli::DeployArgs;
use crate::commands::images::{self, ImageReport};
use crate::config::{Environment, ServiceName};
use crate::error::{Error, Result};
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
    phase.finish(&format!(
        "account {} as {}; {} {}",
        ready.account, ready.caller, ready.terraform.name, ready.terraform.version
    ));

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

    let tf = Terraform::new(ready.terraform.clone(), &out.join("terraform"));
    let tf_line = reporter.line("terraform");
    // A first deploy to ECR creates the repositories before anything can be pushed;
    // otherwise `terraform init` runs while the images build and push.
    // Terraform owns the ECR repositories even when images go to another registry: which
    // exist decides both the first deploy's targeted apply and adopting kept ones.
    let missing_repositories = if args.dry_run {
        Vec::new()
    } else {
        let ecr = aws_sdk_ecr::Client::new(&config);
        let names: Vec<String> = ServiceName::ALL
            .iter()
            .map(|s| images::local_name(env, *s))
            .collect();
        crate::aws::ecr::missing_repositories(&ecr, &names).await?
    };
    let bootstrap = env.registry.is_none() && !missing_repositories.is_empty();
    let ecs = aws_sdk_ecs::Client::new(&config);
    let init = async {
        let phase = reporter.phase("terraform init");
        let (inited, running) = tokio::join!(tf.init(&tf_line), running(&ecs, &ready));
        inited?;
        let running = running?;
        let current = tf.outputs(&tf_line).await?;
        if !args.dry_run {
            adopt_repositories(&tf, &tf_line, env, &missing_repositories).await?;
        }
        if bootstrap {
            create_repositories(&tf, &tf_line, reporter).await?;
        }
        phase.finish("initialised");
        Ok::<_, Error>((current, running))
    };
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
    let ((current, running), image_reports) = if bootstrap {
        let current = init.await?;
        (current, build.await?)
    } else {
        let (current, built) = tokio::join!(init, build);
        (current?, built?)
    };

    let vars = image_vars(&scope, &image_reports, &current, &running, args.dry_run)?;
    let phase = reporter.phase("terraform plan");
    let plan = tf.plan(&vars, PLAN_FILE, &[], &tf_line).await?;
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
    let mut summary = Summary {
        ok: true,
        environment: env.environment.clone(),
        dry_run: args.dry_run,
        account: ready.account.clone(),
        terraform_version: format!("{} {}", ready.terraform.name, ready.terraform.version),
        url: current.url.clone(),
        seconds: 0.0,
        phases: Vec::new(),
        plan: plan.clone(),
        images: image_reports,
        services: Vec::new(),
        verify: None,
    };
    if args.dry_run {
        return Ok(summary.finished(reporter));
    }

    if plan.destroy > 0 {
        confirm_destroy(&plan, args.yes)?;
    }
    let outputs = if plan.changes {
        let phase = reporter.phase("terraform apply");
        let limit = Duration::from_secs(env.deploy.terraform_timeout);
        // Ctrl-C reaches terraform too (same process group), which stops cleanly and keeps
        // its state; a timeout drops the apply, which kills it (kill_on_drop).
        match tokio::time::timeout(limit, tf.apply(PLAN_FILE, &tf_line)).await {
            Ok(applied) => applied?,
            Err(_) => {
                return Err(Error::Timeout(format!(
                    "terraform apply did not finish within {}s (deploy.terraform_timeout); its state in {} holds what was done",
                    limit.as_secs(),
                    tf.dir.display()
                )));
            }
        }
        let outputs = tf.outputs(&tf_line).await?;
        phase.finish("applied");
        outputs
    } else {
        current
    };
    tf_line.finish("done");
    summary.url = outputs.url.clone();
    let cluster = outputs
        .cluster_name
        .clone()
        .unwrap_or_else(|| format!("{prefix}-cluster"));

    let cloud = Aws::new(&config).await;
    let phase = reporter.phase("redeploy");
    let mut expected = Vec::new();
    // Terraform registers task definitions; the services ignore theirs there and are pointed
    // at them here, so a rollback stays until that service is deployed again.
    let moved_alongside = ServiceName::ALL
        .into_iter()
        .filter(|s| !scope.contains(s) && plan.new_task_definitions.contains(s));
    for svc in scope.iter().copied().chain(moved_alongside) {
        let out = outputs.services.get(&svc).ok_or_else(|| Error::Terraform {
            step: "output".into(),
            message: format!("the stack's `services` output has no {svc}"),
        })?;
        let planned = family_revision(&out.task_definition_arn);
        let step = redeploy_step(&ecs, &running, svc, &planned).await?;
        let (task_definition, redeploy, deployment_id) = match step {
            Step::Started => (planned, "new task definition", None),
            Step::Same(current) if scope.contains(&svc) => {
                // Same tasks: only a forced deployment replaces them (new secrets, a moved
                // tag). Never both at once: two deployments confuse the rollout state.
                let id = cloud
                    .force_new_deployment(&cluster, &out.service_name)
                    .await?;
                (current, "forced", id)
            }
            Step::Same(_) => continue,
            Step::Point => {
                let id = crate::aws::ecs::update_task_definition(
                    &ecs,
                    &cluster,
                    &out.service_name,
                    &out.task_definition_arn,
                )
                .await?;
                (planned, "new task definition", id)
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
            image: Some(out.image.clone()),
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

    let poll = Duration::from_millis(args.poll_ms.max(10));
    let phase = reporter.phase("wait");
    let options = WaitOptions {
        timeout: Duration::from_secs(args.timeout.unwrap_or(env.deploy.rollout_timeout)),
        poll,
        since,
    };
    let rolled = interruptible(rollout::wait_all(
        &cloud, &cluster, &expected, &options, reporter,
    ))
    .await?;
    phase.finish("every rollout COMPLETED");
    for r in rolled {
        if let Some(s) = summary
            .services
            .iter_mut()
            .find(|s| s.ecs_name == r.ecs_name)
        {
            s.rollout = Some(r);
        }
    }

    let phase = reporter.phase("verify");
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
    summary.verify =
        Some(interruptible(verify_all(&cloud, env, &groups, &base, poll, reporter)).await?);
    phase.finish("targets healthy, every routed path answers");
    Ok(summary.finished(reporter))
}

pub(crate) async fn verify_all(
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
) -> Result<BTreeMap<ServiceName, TaskDefinition>> {
    let mut out = BTreeMap::new();
    for svc in ServiceName::ALL {
        let arn = ready
            .services
            .iter()
            .find(|s| s.name.ends_with(&format!("-{svc}")))
            .and_then(|s| s.task_definition_arn.clone());
        if let Some(arn) = arn {
            out.insert(svc, crate::aws::ecs::definition(ecs, &arn).await?);
        }
    }
    Ok(out)
}

/// How a service reaches the task definition Terraform left.
enum Step {
    /// Terraform just created the service on it.
    Started,
    /// It runs the same tasks already (`family:revision` it runs).
    Same(String),
    /// It must be pointed at it.
    Point,
}

async fn redeploy_step(
    ecs: &aws_sdk_ecs::Client,
    running: &BTreeMap<ServiceName, TaskDefinition>,
    svc: ServiceName,
    planned: &str,
) -> Result<Step> {
    let Some(now) = running.get(&svc) else {
        return Ok(Step::Started);
    };
    let current = family_revision(now.task_definition_arn().unwrap_or_default());
    if current == planned {
        return Ok(Step::Same(current));
    }
    let next = crate::aws::ecs::definition(ecs, planned).await?;
    Ok(if crate::aws::ecs::same_tasks(now, &next) {
        Step::Same(current)
    } else {
        Step::Point
    })
}

/// `-var SERVICE_image=REPOSITORY@DIGEST` for what was pushed; a service outside `--only`
/// keeps the image it runs (rolled back or not), so the plan never moves it.
fn image_vars(
    scope: &[ServiceName],
    pushed: &[ImageReport],
    current: &Outputs,
    running: &BTreeMap<ServiceName, TaskDefinition>,
    dry_run: bool,
) -> Result<Vec<(String, String)>> {
    let mut vars = Vec::new();
    for svc in ServiceName::ALL {
        let fresh = pushed.iter().find(|r| r.service == svc).and_then(|r| {
            Some(format!(
                "{}@{}",
                r.repository.as_ref()?,
                r.push.as_ref()?.digest
            ))
        });
        let image = fresh
            .or_else(|| running.get(&svc).and_then(crate::aws::ecs::first_image))
            .or_else(|| current.services.get(&svc).map(|o| o.image.clone()));
        match image {
            Some(i) => vars.push((format!("{svc}_image"), i)),
            None if scope.contains(&svc) || dry_run => {}
            None => {
                return Err(Error::Preflight {
                    what: format!("{svc} has never been deployed, so --only cannot leave it out"),
                    hint: "deploy both services once (without --only)".into(),
                });
            }
        }
    }
    Ok(vars)
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
    if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        eprint!(
            "The plan destroys {} resource(s):\n{list}\nApply it? Type `yes`: ",
            plan.destroy
        );
        let mut answer = String::new();
        if std::io::stdin().read_line(&mut answer).is_ok() && answer.trim() == "yes" {
            return Ok(());
        }
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
