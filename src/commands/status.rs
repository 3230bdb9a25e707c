//! `learntrac status ENV`: services, deployments, events, images, target health and
//! secrets — every AWS call at once.

use std::time::Duration;

use serde::Serialize;

use crate::Ctx;
use crate::aws::ecs::ServiceState;
use crate::aws::elbv2::{LoadBalancer, TargetGroup};
use crate::cli::StatusArgs;
use crate::config::{self, Environment, ServiceName};
use crate::error::{Error, Result, exit};
use crate::secrets::{Required, required};

#[derive(Debug, Serialize)]
pub struct ServiceReport {
    pub service: ServiceName,
    pub ecs_name: String,
    /// None when the service does not exist (not deployed yet).
    pub state: Option<ServiceState>,
    /// Image of the PRIMARY deployment's task definition.
    pub image: Option<String>,
    /// Digest of the newest push for this environment (the image tagged with its name).
    pub latest_pushed: Option<String>,
    /// Whether the running image is that digest; None when either is unknown.
    pub runs_latest: Option<bool>,
    pub target_group: Option<TargetGroup>,
}

#[derive(Debug, Serialize)]
pub struct Status {
    pub environment: String,
    pub cluster: String,
    pub load_balancer: Option<String>,
    pub services: Vec<ServiceReport>,
    pub secrets: Vec<Required>,
    /// When Terraform last applied (seconds since the epoch): a deploy that renders the same
    /// infrastructure takes the fast path. None: the next deploy runs Terraform.
    pub last_apply: Option<i64>,
}

pub fn run(args: &StatusArgs, ctx: &Ctx) -> Result<i32> {
    let root = ctx.root()?;
    let env = config::load(&root, &args.env)?;
    let runtime =
        tokio::runtime::Runtime::new().map_err(|e| Error::io("start the async runtime", e))?;
    runtime.block_on(async {
        loop {
            let status = collect(&env).await?;
            if args.watch && !ctx.out.is_json() {
                // Redraw in place: clear the screen, then the table.
                crate::ui::print("\x1b[2J\x1b[H");
            }
            ctx.out.result(&status, || human(&status));
            if !args.watch {
                return Ok(exit::OK);
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(args.interval)) => {}
                _ = tokio::signal::ctrl_c() => return Ok(exit::OK),
            }
        }
    })
}

pub async fn collect(env: &Environment) -> Result<Status> {
    let config = crate::aws::sdk_config(env).await;
    let ecs = aws_sdk_ecs::Client::new(&config);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let ssm = aws_sdk_ssm::Client::new(&config);
    let prefix = env.name_prefix();
    let cluster = format!("{prefix}-cluster");
    let names: Vec<String> = ServiceName::ALL
        .iter()
        .map(|s| format!("{prefix}-{s}"))
        .collect();
    let (alb, ssm_prefix) = (format!("{prefix}-alb"), env.ssm_prefix());
    let (ecr, http) = (aws_sdk_ecr::Client::new(&config), reqwest::Client::new());
    let latest = futures_util::future::join_all(
        ServiceName::ALL
            .iter()
            .map(|svc| latest_pushed(env, &ecr, &http, format!("{prefix}-{svc}"))),
    );
    let (services, lb, params, latest, applied) = tokio::join!(
        crate::aws::ecs::services(&ecs, &cluster, &names),
        crate::aws::elbv2::load_balancer(&elb, &alb),
        crate::aws::ssm::list(&ssm, &ssm_prefix),
        latest,
        crate::deploy::record::read(&ssm, env),
    );
    let (services, lb, params) = (services?, lb?, params?);
    let images = futures_util::future::join_all(services.iter().map(|s| {
        let primary = s
            .deployments
            .iter()
            .find(|d| d.status == "PRIMARY")
            .map(|d| d.task_definition.clone());
        let ecs = &ecs;
        async move {
            match primary {
                Some(td) => crate::aws::ecs::image_of(ecs, &td).await.ok().flatten(),
                None => None,
            }
        }
    }))
    .await;
    let reports = ServiceName::ALL
        .iter()
        .zip(latest)
        .map(|(svc, latest_pushed)| {
            let ecs_name = format!("{prefix}-{svc}");
            let idx = services.iter().position(|s| s.name == ecs_name);
            let port = i32::from(env.services.get(*svc).port);
            let image = idx.and_then(|i| images[i].clone());
            let running_digest = image
                .as_deref()
                .and_then(|i| i.split_once('@'))
                .map(|(_, d)| d.to_string());
            ServiceReport {
                service: *svc,
                state: idx.map(|i| services[i].clone()),
                runs_latest: match (&running_digest, &latest_pushed) {
                    (Some(r), Some(l)) => Some(r == l),
                    _ => None,
                },
                latest_pushed,
                image,
                target_group: lb.as_ref().and_then(|l: &LoadBalancer| {
                    l.target_groups
                        .iter()
                        .find(|t| t.port == Some(port))
                        .cloned()
                }),
                ecs_name,
            }
        })
        .collect();
    let secrets = required(env, &params);
    Ok(Status {
        environment: env.environment.clone(),
        cluster,
        load_balancer: lb.map(|l| l.dns_name),
        services: reports,
        secrets,
        last_apply: applied.ok().flatten().map(|a| a.at),
    })
}

/// The digest tagged with the environment's name: every push moves that tag.
async fn latest_pushed(
    env: &Environment,
    ecr: &aws_sdk_ecr::Client,
    http: &reqwest::Client,
    repository: String,
) -> Option<String> {
    crate::registry::digest_of_tag(env, ecr, http, &repository, &env.environment).await
}

fn human(s: &Status) -> String {
    let mut out = format!(
        "environment {}   cluster {}   load balancer {}\n",
        s.environment,
        s.cluster,
        s.load_balancer.as_deref().unwrap_or("(none)")
    );
    out.push_str(&match s.last_apply {
        Some(at) => format!(
            "last terraform apply {} (a deploy of the same infrastructure skips Terraform)\n",
            crate::ui::utc(at)
        ),
        None => "no record of a terraform apply: the next deploy runs Terraform\n".into(),
    });
    for r in &s.services {
        out.push_str(&format!("\n{} ({})\n", r.service, r.ecs_name));
        let Some(st) = &r.state else {
            out.push_str("  not deployed\n");
            continue;
        };
        out.push_str(&format!(
            "  desired {}  running {}  pending {}  [{}]\n",
            st.desired, st.running, st.pending, st.status
        ));
        if let Some(img) = &r.image {
            let latest = match (r.runs_latest, &r.latest_pushed) {
                (Some(true), _) => " (the latest push)".to_string(),
                (Some(false), Some(l)) => format!(" (latest push {l} is not running)"),
                _ => String::new(),
            };
            out.push_str(&format!("  image   {img}{latest}\n"));
        }
        for d in &st.deployments {
            out.push_str(&format!(
                "  {:<8} {}  rollout {}  {}/{} running{}\n",
                d.status,
                d.task_definition,
                d.rollout_state.as_deref().unwrap_or("-"),
                d.running,
                d.desired,
                if d.failed_tasks > 0 {
                    format!(", {} failed", d.failed_tasks)
                } else {
                    String::new()
                }
            ));
        }
        if let Some(tg) = &r.target_group {
            let healthy = tg.targets.iter().filter(|t| t.state == "healthy").count();
            out.push_str(&format!(
                "  targets {healthy}/{} healthy ({})\n",
                tg.targets.len(),
                tg.name
            ));
            for t in tg.targets.iter().filter(|t| t.state != "healthy") {
                out.push_str(&format!(
                    "    {} {} {}\n",
                    t.id,
                    t.state,
                    t.reason.as_deref().unwrap_or("")
                ));
            }
        }
        for e in &st.events {
            out.push_str(&format!("  event   {}\n", e.message));
        }
    }
    out.push_str("\nsecrets\n");
    for sec in &s.secrets {
        out.push_str(&format!(
            "  {:<9} {} ({} {})\n",
            if sec.present { "present" } else { "MISSING" },
            sec.parameter,
            sec.service,
            sec.variable
        ));
    }
    out
}
