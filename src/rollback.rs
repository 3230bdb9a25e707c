//! `learntrac rollback ENV`: services back to an earlier task-definition revision — the one
//! before what runs, a given revision, or the newest one that runs a commit's images — then
//! the same wait and verify as `deploy`. No Terraform: the services ignore their task
//! definition there, and `deploy` starts from what runs (so nothing undoes a rollback but
//! the next deploy of that service).

use std::time::Duration;

use serde::Serialize;

use crate::aws::cloud::Aws;
use crate::aws::ecs::{self, family_revision, first_image, revision_number};
use crate::config::{Environment, ServiceName};
use crate::deploy::Probe;
use crate::deploy::report::{PhaseTime, Reporter};
use crate::deploy::rollout::{Expected, RolledOut, WaitOptions};
use crate::deploy::verify::Verified;
use crate::error::{Error, Result};

/// Revisions looked through for a commit's image, newest first (ECR keeps 50 images).
const REVISIONS_SEARCHED: usize = 60;

/// Where to go.
#[derive(Debug, Clone, PartialEq)]
pub enum To {
    /// The newest ACTIVE revision older than the one running.
    Previous,
    /// This revision of the (single) service's family.
    Revision(i32),
    /// The newest revision running the images tagged with this commit (12-character tag).
    Commit(String),
}

pub struct Request<'a> {
    pub scope: &'a [ServiceName],
    pub to: To,
    pub yes: bool,
    pub dry_run: bool,
    pub no_wait: bool,
    pub timeout: Option<u64>,
    pub poll: Duration,
}

#[derive(Debug, Serialize)]
pub struct Move {
    pub service: ServiceName,
    pub ecs_name: String,
    /// `family:revision` running before.
    pub from: String,
    /// `family:revision` to run; None when the service stays.
    pub to: Option<String>,
    pub image: Option<String>,
    /// Why the service stays, when it does.
    pub stays: Option<String>,
    pub rollout: Option<RolledOut>,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub ok: bool,
    pub environment: String,
    pub dry_run: bool,
    pub seconds: f64,
    pub phases: Vec<PhaseTime>,
    pub services: Vec<Move>,
    pub verify: Option<Verified>,
}

pub async fn rollback(env: &Environment, req: Request<'_>, reporter: &Reporter) -> Result<Summary> {
    let prefix = env.name_prefix();
    let cluster = format!("{prefix}-cluster");
    let config = crate::aws::sdk_config(env).await;
    let cloud = Aws::new(&config).await;
    let since = crate::deploy::now_secs() - 5;

    let phase = reporter.phase("preflight");
    let names: Vec<String> = req.scope.iter().map(|s| format!("{prefix}-{s}")).collect();
    let (identity, services) = tokio::join!(
        crate::aws::sts::identity(&config),
        ecs::services(&cloud.ecs, &cluster, &names)
    );
    let identity = identity?;
    crate::deploy::preflight::account(env, &identity)?;
    let services = services?;
    phase.finish(&format!("account {}", identity.account));

    let phase = reporter.phase("choose");
    let ecr = aws_sdk_ecr::Client::new(&config);
    let mut moves = Vec::new();
    for (svc, ecs_name) in req.scope.iter().zip(&names) {
        let state = services
            .iter()
            .find(|s| &s.name == ecs_name && s.status == "ACTIVE")
            .ok_or_else(|| Error::Preflight {
                what: format!("{svc}: the ECS service {ecs_name} does not exist"),
                hint: format!("nothing to roll back: deploy {} first", env.environment),
            })?;
        if crate::deploy::preflight::in_progress(state) {
            return Err(Error::Preflight {
                what: format!("{svc}: a deployment is still in progress"),
                hint: format!(
                    "wait for it (`learntrac status {} --watch`); the circuit breaker may be rolling it back already",
                    env.environment
                ),
            });
        }
        let from = family_revision(state.task_definition_arn.as_deref().unwrap_or_default());
        let target = choose(&cloud.ecs, &ecr, env, *svc, &from, &req.to).await?;
        let mv = match target {
            Choice::Go { to, image } if to == from => Move {
                stays: Some(format!("already runs {to}")),
                image,
                to: None,
                ..stay(*svc, ecs_name, &from)
            },
            Choice::Go { to, image } => {
                refuse_another_template(&cloud.ecs, env, *svc, &to).await?;
                reporter.info(
                    "choose",
                    Some(svc.as_str()),
                    &format!("{from} → {to} ({})", image.as_deref().unwrap_or("no image")),
                );
                Move {
                    to: Some(to),
                    image,
                    ..stay(*svc, ecs_name, &from)
                }
            }
            Choice::Stay(why) => {
                reporter.info(
                    "choose",
                    Some(svc.as_str()),
                    &format!("stays on {from}: {why}"),
                );
                Move {
                    stays: Some(why),
                    ..stay(*svc, ecs_name, &from)
                }
            }
        };
        moves.push(mv);
    }
    let going = moves.iter().filter(|m| m.to.is_some()).count();
    phase.finish(&format!("{going} service(s) to roll back"));
    if going == 0 && req.to == To::Previous {
        return Err(Error::Preflight {
            what: format!(
                "nothing to roll back to: {}",
                moves
                    .iter()
                    .map(|m| format!("{} {}", m.service, m.stays.as_deref().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            hint: "`learntrac rollback ENV --to COMMIT` goes to a commit deployed before".into(),
        });
    }
    let mut summary = Summary {
        ok: true,
        environment: env.environment.clone(),
        dry_run: req.dry_run,
        seconds: 0.0,
        phases: Vec::new(),
        services: moves,
        verify: None,
    };
    if req.dry_run || going == 0 {
        return Ok(finished(summary, reporter));
    }
    confirm(env, &summary.services, req.yes)?;

    let phase = reporter.phase("redeploy");
    let mut expected = Vec::new();
    for m in &summary.services {
        let Some(to) = &m.to else { continue };
        let id = ecs::update_task_definition(&cloud.ecs, &cluster, &m.ecs_name, to).await?;
        expected.push(Expected {
            service: m.service.to_string(),
            ecs_name: m.ecs_name.clone(),
            task_definition: to.clone(),
            deployment_id: id,
        });
    }
    phase.finish(&format!("{} rollout(s) started", expected.len()));
    if req.no_wait {
        return Ok(finished(summary, reporter));
    }

    let moved: Vec<ServiceName> = summary
        .services
        .iter()
        .filter(|m| m.to.is_some())
        .map(|m| m.service)
        .collect();
    let lb = crate::aws::elbv2::load_balancer(&cloud.elb, &format!("{prefix}-alb"))
        .await?
        .ok_or_else(|| Error::Rollout(format!("the load balancer {prefix}-alb does not exist")))?;
    let groups: Vec<(String, String)> = moved
        .iter()
        .filter_map(|s| {
            let port = i32::from(env.services.get(*s).port);
            lb.target_groups
                .iter()
                .find(|t| t.port == Some(port))
                .map(|t| (s.to_string(), t.arn.clone()))
        })
        .collect();
    let base = env.deploy.public_url.clone().unwrap_or_else(|| {
        let scheme = if env.tls.certificate_arn.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", lb.dns_name)
    });
    let options = WaitOptions {
        timeout: Duration::from_secs(req.timeout.unwrap_or(env.deploy.rollout_timeout)),
        poll: req.poll,
        since,
    };
    let (mut rolled, verified) = crate::deploy::wait_and_verify(
        &cloud,
        env,
        &cluster,
        &expected,
        &options,
        &Probe { groups, base },
        reporter,
    )
    .await?;
    for m in &mut summary.services {
        m.rollout = rolled.remove(&m.ecs_name);
    }
    summary.verify = Some(verified);
    Ok(finished(summary, reporter))
}

/// Refuses a revision made from another stack template than the one the stack has now:
/// rolling back code must not bring back old roles, volumes or secrets (those of a stack
/// since changed, or destroyed and made again).
async fn refuse_another_template(
    client: &aws_sdk_ecs::Client,
    env: &Environment,
    svc: ServiceName,
    to: &str,
) -> Result<()> {
    let template_family = format!("{}-{svc}-template", env.name_prefix());
    let Some(template) = ecs::revisions(client, &template_family)
        .await?
        .into_iter()
        .next()
    else {
        return Ok(());
    };
    let (target, template) = tokio::try_join!(
        ecs::definition(client, to),
        ecs::definition(client, &template)
    )?;
    let differ = ecs::stack_differences(&target, &template);
    if differ.is_empty() {
        return Ok(());
    }
    Err(Error::Preflight {
        what: format!(
            "{svc}: {to} was made from another stack template: its {} differ from what the stack gives the service now, and rolling back would bring the old ones back",
            differ.join(", ")
        ),
        hint: format!(
            "roll back code and stack together: check out the commit and `learntrac deploy {}`",
            env.environment
        ),
    })
}

fn stay(service: ServiceName, ecs_name: &str, from: &str) -> Move {
    Move {
        service,
        ecs_name: ecs_name.to_string(),
        from: from.to_string(),
        to: None,
        image: None,
        stays: None,
        rollout: None,
    }
}

fn finished(mut s: Summary, reporter: &Reporter) -> Summary {
    s.phases = reporter.phases();
    s.seconds = (reporter.elapsed() * 10.0).round() / 10.0;
    s
}

enum Choice {
    Go { to: String, image: Option<String> },
    Stay(String),
}

async fn choose(
    client: &aws_sdk_ecs::Client,
    ecr: &aws_sdk_ecr::Client,
    env: &Environment,
    svc: ServiceName,
    from: &str,
    to: &To,
) -> Result<Choice> {
    let family = from.rsplit_once(':').map_or(from, |(f, _)| f);
    let current = revision_number(from).unwrap_or(i32::MAX);
    let revisions = ecs::revisions(client, family).await?;
    let image_of = |td: String| async move {
        let image = ecs::image_of(client, &td).await?;
        Ok::<_, Error>(Choice::Go { to: td, image })
    };
    match to {
        To::Previous => {
            match revisions
                .into_iter()
                .find(|r| revision_number(r).is_some_and(|n| n < current))
            {
                Some(td) => image_of(td).await,
                None => Ok(Choice::Stay(format!(
                    "no revision of {family} before {from}"
                ))),
            }
        }
        To::Revision(n) => {
            let td = format!("{family}:{n}");
            if revisions.contains(&td) {
                image_of(td).await
            } else {
                Err(Error::Invalid {
                    what: format!("{svc}: {td} is not an ACTIVE task definition"),
                    hint: format!(
                        "the ACTIVE revisions are {}",
                        revisions
                            .iter()
                            .filter_map(|r| revision_number(r))
                            .map(|n| n.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })
            }
        }
        To::Commit(tag) => {
            let repository = format!("{}-{svc}", env.name_prefix());
            let digest =
                crate::registry::digest_of_tag(env, ecr, &reqwest::Client::new(), &repository, tag)
                    .await
                    .ok_or_else(|| {
                        Error::Invalid {
                what: format!("{svc}: no image tagged {tag} in {repository}"),
                hint: "give a commit whose images were pushed (`learntrac push` or `deploy` of it)"
                    .into(),
            }
                    })?;
            for td in revisions.into_iter().take(REVISIONS_SEARCHED) {
                let definition = ecs::definition(client, &td).await?;
                let image = first_image(&definition);
                if image
                    .as_deref()
                    .is_some_and(|i| i.ends_with(&format!("@{digest}")))
                {
                    return Ok(Choice::Go { to: td, image });
                }
            }
            Err(Error::Invalid {
                what: format!(
                    "{svc}: no task definition of {family} runs {tag} ({repository}@{digest})"
                ),
                hint: "that commit never ran here: deploy it (`git checkout COMMIT && learntrac deploy ENV`)".into(),
            })
        }
    }
}

/// `yes` on a terminal, or --yes; nothing else goes ahead.
fn confirm(env: &Environment, moves: &[Move], yes: bool) -> Result<()> {
    let mut list = format!("rolling back {}:\n", env.environment);
    for m in moves {
        if let Some(to) = &m.to {
            list.push_str(&format!(
                "    {:<10} {} → {to}\n",
                m.service.as_str(),
                m.from
            ));
        }
    }
    if yes {
        eprint!("{list}");
        return Ok(());
    }
    match crate::ui::ask(&format!("{list}Roll back? Type `yes`: "), "yes") {
        crate::ui::Answer::Confirmed => Ok(()),
        crate::ui::Answer::Refused => Err(Error::Invalid {
            what: "not confirmed; nothing was changed".into(),
            hint: "type `yes`, or pass --yes".into(),
        }),
        crate::ui::Answer::NoTerminal => Err(Error::Invalid {
            what: format!("{list}not confirmed (no terminal to ask on); nothing was changed"),
            hint: "pass --yes (in CI) after reading the list above".into(),
        }),
    }
}
