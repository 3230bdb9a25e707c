//! Everything a deploy needs, checked at once before any side effect; every missing
//! prerequisite is reported with its own fix.

use crate::aws::ecs::ServiceState;
use crate::config::Environment;
use crate::error::{Error, Result};
use crate::terraform::Binary;

#[derive(Debug)]
pub struct Ready {
    pub terraform: Binary,
    pub account: String,
    pub caller: String,
    /// Every service of the environment that exists, as ECS describes it (empty before the
    /// first deploy).
    pub services: Vec<ServiceState>,
    /// What preflight could not check, or measured, for the phase's line.
    pub notes: Vec<String>,
}

/// The Fargate vCPUs the environment's tasks hold during a rollout, with every service at
/// `count` tasks (its desired or its autoscaling maximum), doubled while old and new tasks
/// overlap (maximumPercent 200).
pub fn rollout_peak_vcpus(env: &Environment, count: impl Fn(&crate::config::Count) -> u32) -> f64 {
    env.services
        .iter()
        .map(|(_, s)| f64::from(s.cpu) / 1024.0 * f64::from(count(&s.count)) * 2.0)
        .sum()
}

/// A prerequisite that is missing, and how to fix it.
struct Problem {
    what: String,
    fix: String,
}

impl From<Error> for Problem {
    fn from(e: Error) -> Self {
        match e {
            Error::Preflight { what, hint } => Problem { what, fix: hint },
            Error::Credentials { what, detail } => Problem {
                what: if crate::ui::verbose() {
                    format!("{what}: no AWS credentials were found ({detail})")
                } else {
                    format!("{what}: no AWS credentials were found")
                },
                fix: crate::error::CREDENTIALS_FIX.into(),
            },
            other => Problem {
                what: other.to_string(),
                fix: "see the message above".into(),
            },
        }
    }
}

pub struct Checks<'a> {
    pub env: &'a Environment,
    pub config: &'a aws_config::SdkConfig,
    /// Docker is needed unless nothing is built or pushed (--dry-run).
    pub docker: bool,
    pub force: bool,
    /// ECS service names this deploy rolls out.
    pub services: Vec<String>,
}

/// Refuses credentials of another account than the environment's `aws.account_id`, before
/// anything is touched (Terraform's `allowed_account_ids` would, but only once it runs).
/// Deploy, rollback and destroy all ask.
pub fn account(env: &Environment, id: &crate::aws::sts::Identity) -> Result<()> {
    match &env.aws.account_id {
        Some(want) if &id.account != want => Err(Error::Preflight {
            what: format!(
                "the AWS credentials belong to account {} ({}), but {} deploys to account {want}",
                id.account, id.arn, env.environment
            ),
            hint: format!(
                "use the profile of account {want} (AWS_PROFILE=…), or correct aws.account_id in environments/{}.yaml",
                env.environment
            ),
        }),
        _ => Ok(()),
    }
}

pub async fn run(checks: Checks<'_>) -> Result<Ready> {
    let env = checks.env;
    let ssm = aws_sdk_ssm::Client::new(checks.config);
    let ecs = aws_sdk_ecs::Client::new(checks.config);
    let cluster = format!("{}-cluster", env.name_prefix());
    let docker = async {
        if checks.docker {
            crate::docker::connect().await.map(|_| ())
        } else {
            Ok(())
        }
    };
    let ssm_prefix = env.ssm_prefix();
    let every_service: Vec<String> = crate::config::ServiceName::ALL
        .iter()
        .map(|s| format!("{}-{s}", env.name_prefix()))
        .collect();
    let network = async {
        let ec2 = crate::aws::ec2::Ec2::new(checks.config).await?;
        let vpc = super::network::vpc_id(&ec2, env).await?;
        let routes = super::network::check(&ec2, env, &vpc).await?;
        let dns = super::network::dns(&ec2, &vpc).await?;
        Ok::<_, Error>((routes, dns))
    };
    // Terraform's `init` would stop on a state bucket that is not there, and its first
    // locking command on a lock table that is not.
    let state_bucket = async {
        match &env.terraform.s3 {
            None => Ok((None, None)),
            Some(s3cfg) => {
                let region = s3cfg.region.as_deref().unwrap_or(&env.aws.region);
                let client = crate::aws::s3::client(env, region).await;
                // Owned by the pinned account, when the environment names one.
                let owner = env.aws.account_id.as_deref().unwrap_or("");
                let bucket = crate::aws::s3::existence(&client, &s3cfg.bucket, owner)
                    .await
                    .map(|e| Some((s3cfg.bucket.clone(), e)))?;
                let table = match &s3cfg.lock_table {
                    Some(t) => Some((
                        t.clone(),
                        crate::aws::dynamodb::table_exists(checks.config, region, t).await?,
                    )),
                    None => None,
                };
                Ok((bucket, table))
            }
        }
    };
    let service_linked_role = crate::aws::iam::ecs_service_linked_role_exists(checks.config);
    // A wrong certificate otherwise fails CreateListener after the database and the cache
    // spent their tens of minutes being made.
    let certificate = async {
        match &env.tls.certificate_arn {
            Some(arn) => crate::aws::acm::describe(checks.config, arn)
                .await
                .map(|c| Some((arn.clone(), c))),
            None => Ok(None),
        }
    };
    let quota = crate::aws::quotas::fargate_vcpu(checks.config);
    let (docker, identity, terraform, params, services, network, bucket, role, certificate, quota) = tokio::join!(
        docker,
        crate::aws::sts::identity(checks.config),
        crate::terraform::find(),
        crate::aws::ssm::list(&ssm, &ssm_prefix),
        crate::aws::ecs::services(&ecs, &cluster, &every_service),
        network,
        state_bucket,
        service_linked_role,
        certificate,
        quota,
    );
    let mut problems: Vec<Problem> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let peak = rollout_peak_vcpus(env, |c| c.desired);
    let peak_at_max = rollout_peak_vcpus(env, |c| c.max.max(c.desired));
    match quota {
        Ok(Some(q)) if q < peak => problems.push(Problem {
            what: format!(
                "the account's Fargate vCPU quota in {} is {q}, and a rollout of {} holds {peak} (every service at its desired count, twice while old and new tasks overlap): ECS would leave tasks pending and the rollout would fail",
                env.aws.region, env.environment
            ),
            fix: format!(
                "ask for more in Service Quotas (aws service-quotas request-service-quota-increase --service-code fargate --quota-code {} --desired-value {}), or lower services.*.count.max or cpu; other Fargate tasks of the account count against it too",
                crate::aws::quotas::FARGATE_VCPU,
                peak_at_max.ceil()
            ),
        }),
        Ok(Some(q)) if q < peak_at_max => notes.push(format!(
            "Fargate vCPU peak {peak} of quota {q}; scaled out to count.max a rollout would need {peak_at_max}"
        )),
        Ok(Some(q)) => notes.push(format!("Fargate vCPU peak {peak} of quota {q}")),
        Ok(None) => notes.push("Fargate vCPU quota not known to Service Quotas here".into()),
        // No credentials: the identity check says so once.
        Err(Error::Credentials { .. }) => {}
        // Reading quotas needs servicequotas:GetServiceQuota, which a deploy role may lack:
        // not a reason to stop.
        Err(e) => notes.push(format!("Fargate vCPU quota not checked ({e})")),
    }
    let bucket = bucket.map(|(bucket, table)| {
        if let Some((name, false)) = table {
            problems.push(Problem {
                what: format!("the Terraform lock table {name} (terraform.s3.lock_table) does not exist"),
                fix: format!(
                    "remove lock_table from environments/{}.yaml: Terraform then locks with S3's own lock file (nothing to create; DynamoDB locking is deprecated since Terraform 1.10) — or create the table: aws dynamodb create-table --table-name {name} --attribute-definitions AttributeName=LockID,AttributeType=S --key-schema AttributeName=LockID,KeyType=HASH --billing-mode PAY_PER_REQUEST",
                    env.environment
                ),
            });
        }
        bucket
    });
    match bucket {
        Ok(None | Some((_, crate::aws::s3::Existence::Ours))) => {}
        Ok(Some((name, crate::aws::s3::Existence::Missing))) => problems.push(Problem {
            what: format!("the Terraform state bucket s3://{name} does not exist"),
            fix: format!(
                "learntrac bootstrap {} --yes (creates it, set up for state)",
                env.environment
            ),
        }),
        Ok(Some((name, crate::aws::s3::Existence::Forbidden))) => problems.push(Problem {
            what: format!(
                "the Terraform state bucket s3://{name} answers 403: it belongs to another account, or these credentials may not read it"
            ),
            fix: "if it is this account's, grant s3:ListBucket, s3:GetObject and s3:PutObject on it; bucket names are global, so if it is not, choose another terraform.s3.bucket".into(),
        }),
        // No credentials: the identity check says so once.
        Err(Error::Credentials { .. }) => {}
        Err(e) => problems.push(e.into()),
    }
    if let Err(e) = docker {
        problems.push(e.into());
    }
    match certificate {
        Ok(None) | Err(Error::Credentials { .. }) => {}
        Ok(Some((arn, None))) => problems.push(Problem {
            what: format!(
                "ACM in {} has no certificate {arn}: the load balancer could not serve HTTPS",
                env.aws.region
            ),
            fix: format!(
                "request or import the certificate in {} (a load balancer uses only its own region's; one made for CloudFront lives in us-east-1) and set tls.certificate_arn to its ARN",
                env.aws.region
            ),
        }),
        Ok(Some((arn, Some(c)))) => {
            if c.status != "ISSUED" {
                problems.push(Problem {
                    what: format!("the certificate {arn} is {}, not ISSUED", c.status),
                    fix: "finish its validation in ACM (the DNS record it asks for), or choose an issued certificate".into(),
                });
            }
            let host = env
                .deploy
                .public_url
                .as_deref()
                .and_then(|u| u.split("://").nth(1))
                .and_then(|rest| rest.split(['/', ':']).next())
                .unwrap_or_default();
            if !host.is_empty() && !c.names.iter().any(|n| crate::aws::acm::covers(n, host)) {
                problems.push(Problem {
                    what: format!(
                        "the certificate {arn} names {}, not {host} (deploy.public_url): browsers would refuse it",
                        c.names.join(", ")
                    ),
                    fix: format!("use a certificate for {host}, or set deploy.public_url to a name it covers"),
                });
            }
        }
        Err(e) => problems.push(e.into()),
    }
    match role {
        Ok(true) | Err(Error::Credentials { .. }) => {}
        Ok(false) => problems.push(Problem {
            what: format!(
                "the account has no ECS service-linked role ({}): creating the services would fail (\"Unable to assume the service linked role\")",
                crate::aws::iam::ECS_SERVICE_LINKED_ROLE
            ),
            fix: format!(
                "learntrac bootstrap {} --yes (creates it), or aws iam create-service-linked-role --aws-service-name ecs.amazonaws.com",
                env.environment
            ),
        }),
        Err(e) => problems.push(e.into()),
    }
    let identity = match identity {
        Ok(id) => {
            if let Err(e) = account(env, &id) {
                problems.push(e.into());
            }
            Some(id)
        }
        Err(e @ Error::Credentials { .. }) => {
            problems.push(e.into());
            None
        }
        Err(e) => {
            problems.push(Problem {
                what: format!("cannot tell who the AWS credentials belong to: {e}"),
                fix: crate::error::CREDENTIALS_FIX.into(),
            });
            None
        }
    };
    let terraform = match terraform {
        Ok(t) => Some(t),
        Err(e) => {
            problems.push(e.into());
            None
        }
    };
    // Only meaningful once the credentials work; otherwise the identity problem says it all.
    if identity.is_some() {
        match params {
            Ok(params) => {
                // One problem per parameter, naming every service that reads it.
                let mut missing: Vec<(String, Vec<String>)> = Vec::new();
                for r in crate::secrets::required(env, &params)
                    .into_iter()
                    .filter(|r| !r.present)
                {
                    let reader = format!("{} as {}", r.service, r.variable);
                    match missing.iter_mut().find(|(p, _)| p == &r.parameter) {
                        Some((_, readers)) => readers.push(reader),
                        None => missing.push((r.parameter, vec![reader])),
                    }
                }
                for (parameter, readers) in missing {
                    let short = parameter
                        .strip_prefix(&format!("{}/", env.ssm_prefix()))
                        .unwrap_or(&parameter);
                    problems.push(Problem {
                        what: format!(
                            "SSM parameter {parameter} is missing (read by {})",
                            readers.join(", ")
                        ),
                        fix: format!(
                            "learntrac bootstrap {} --yes (generates what a machine may choose), or learntrac secrets set {} {short}",
                            env.environment, env.environment
                        ),
                    });
                }
            }
            Err(e) => problems.push(e.into()),
        }
        match network {
            Ok((routes, dns)) => {
                if let Some(u) = routes {
                    problems.push(Problem {
                        what: u.what(),
                        fix: u.fix(),
                    });
                }
                if let Some(d) = dns {
                    problems.push(Problem {
                        what: d.what(),
                        fix: d.fix(),
                    });
                }
            }
            Err(e) => problems.push(e.into()),
        }
        match &services {
            Ok(services) if !checks.force => {
                for s in services
                    .iter()
                    .filter(|s| checks.services.contains(&s.name) && in_progress(s))
                {
                    problems.push(Problem {
                        what: format!(
                            "a deployment of {} is still in progress ({} deployments, PRIMARY {})",
                            s.name,
                            s.deployments.len(),
                            s.deployments
                                .iter()
                                .find(|d| d.status == "PRIMARY")
                                .and_then(|d| d.rollout_state.clone())
                                .unwrap_or_default()
                        ),
                        fix: format!(
                            "wait for it (`learntrac status {} --watch`), or pass --force",
                            env.environment
                        ),
                    });
                }
            }
            // A cluster that does not exist yet (first deploy) has nothing in progress.
            _ => {}
        }
    }
    match (problems.is_empty(), terraform, identity) {
        (true, Some(terraform), Some(id)) => Ok(Ready {
            terraform,
            account: id.account,
            caller: id.arn,
            services: services
                .unwrap_or_default()
                .into_iter()
                .filter(|s| s.status == "ACTIVE")
                .collect(),
            notes,
        }),
        _ => Err(Error::Preflight {
            what: format!(
                "preflight found {} problem{}; nothing was changed:\n{}",
                problems.len(),
                if problems.len() == 1 { "" } else { "s" },
                problems
                    .iter()
                    .map(|p| format!("  - {}\n      fix: {}", p.what, p.fix))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
            hint: "fix the above and run the deploy again".into(),
        }),
    }
}

/// More than one deployment, or a PRIMARY whose rollout is still going.
pub fn in_progress(s: &ServiceState) -> bool {
    s.status == "ACTIVE"
        && (s.deployments.len() > 1
            || s.deployments.iter().any(|d| {
                d.status == "PRIMARY" && d.rollout_state.as_deref() == Some("IN_PROGRESS")
            }))
}
