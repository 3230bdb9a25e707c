//! After the rollouts: every target group healthy (with AWS's reason code when not), then an
//! HTTP probe of each service's health path and each routed path through the load balancer.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::report::Reporter;
use crate::aws::cloud::Cloud;
use crate::aws::elbv2::Target;
use crate::config::Environment;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Serialize)]
pub struct TargetGroupHealth {
    pub service: String,
    pub target_group_arn: String,
    pub healthy: usize,
    pub targets: Vec<Target>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    pub path: String,
    /// Which service the routing sends it to.
    pub service: String,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub ok: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    pub base_url: String,
    pub target_groups: Vec<TargetGroupHealth>,
    pub probes: Vec<Probe>,
}

/// Waits until every target group has targets and all of them are healthy.
pub async fn targets(
    cloud: &dyn Cloud,
    groups: &[(String, String)],
    timeout: Duration,
    poll: Duration,
    reporter: &Reporter,
) -> Result<Vec<TargetGroupHealth>> {
    let started = Instant::now();
    // Each target's last printed state, so a change is printed once.
    let mut printed: BTreeMap<String, String> = BTreeMap::new();
    loop {
        let mut all = Vec::new();
        let mut failure = None;
        for (service, arn) in groups {
            match cloud.target_health(arn).await {
                Ok(targets) => {
                    for t in &targets {
                        let state = match &t.reason {
                            Some(r) => format!("{} ({r})", t.state),
                            None => t.state.clone(),
                        };
                        let key = format!("{arn}/{}:{}", t.id, t.port.unwrap_or(0));
                        if printed.get(&key) != Some(&state) {
                            let detail = t
                                .description
                                .as_ref()
                                .map(|d| format!(": {d}"))
                                .unwrap_or_default();
                            reporter.emit(
                                "verify",
                                Some(service),
                                "target",
                                &format!("target {} {state}{detail}", t.id),
                            );
                            printed.insert(key, state);
                        }
                    }
                    all.push(TargetGroupHealth {
                        service: service.clone(),
                        target_group_arn: arn.clone(),
                        healthy: targets.iter().filter(|t| t.state == "healthy").count(),
                        targets,
                    });
                }
                Err(e) => failure = Some(e),
            }
        }
        let done = failure.is_none()
            && all
                .iter()
                .all(|g| !g.targets.is_empty() && g.healthy == g.targets.len());
        if done {
            return Ok(all);
        }
        if started.elapsed() >= timeout {
            if let Some(e) = failure {
                return Err(e);
            }
            return Err(unhealthy(&all, timeout));
        }
        tokio::time::sleep(poll).await;
    }
}

/// Unhealthy targets mean the new version does not serve (exit 6); targets still
/// registering or none at all after the wait are a timeout (exit 7).
fn unhealthy(groups: &[TargetGroupHealth], timeout: Duration) -> Error {
    let mut lines = Vec::new();
    let mut any_unhealthy = false;
    for g in groups {
        if g.targets.is_empty() {
            lines.push(format!(
                "{}: no targets registered in {}",
                g.service, g.target_group_arn
            ));
        }
        for t in g.targets.iter().filter(|t| t.state != "healthy") {
            any_unhealthy |= t.state == "unhealthy";
            lines.push(format!(
                "{}: target {} {}{}{}",
                g.service,
                t.id,
                t.state,
                t.reason
                    .as_ref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default(),
                t.description
                    .as_ref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            ));
        }
    }
    let message = format!(
        "the load balancer's targets are not all healthy after {}s:\n    {}",
        timeout.as_secs(),
        lines.join("\n    ")
    );
    if any_unhealthy {
        Error::Rollout(message)
    } else {
        Error::Timeout(message)
    }
}

/// The path that reaches the listener's default action: Trac's front page.
pub const FRONT_PAGE: &str = "/";

/// Each health check path, the front page (the listener's default action) and one path per
/// routing rule (its first pattern made concrete).
pub fn probe_paths(env: &Environment) -> Vec<(String, String)> {
    let mut paths: Vec<(String, String)> = env
        .services
        .iter()
        .map(|(s, spec)| (spec.health_check.path.clone(), s.to_string()))
        .collect();
    paths.push((
        FRONT_PAGE.to_string(),
        crate::config::ServiceName::DEFAULT_ROUTE.to_string(),
    ));
    let mut rules: Vec<_> = env.routing.iter().collect();
    rules.sort_by_key(|r| r.priority);
    for rule in rules {
        if let Some(p) = rule.paths.first() {
            let concrete = if let Some(rest) = p.strip_prefix('*') {
                format!("/learntrac-probe{rest}")
            } else {
                p.replace('*', "").replace('?', "a")
            };
            if !paths.iter().any(|(x, _)| x == &concrete) {
                paths.push((concrete, rule.service.to_string()));
            }
        }
    }
    paths
}

/// GETs each path from `base`; a health path must answer below 400, any other path below 500
/// (a 404 from the application still proves the route reaches it; 502/503/504 do not).
pub async fn probe(
    base: &str,
    paths: &[(String, String)],
    health_paths: &[String],
    deadline: Instant,
    reporter: &Reporter,
) -> Result<Vec<Probe>> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::limited(3))
        .build()
        .map_err(|e| Error::Rollout(format!("cannot make an HTTP client: {e}")))?;
    let mut results = Vec::new();
    for (path, service) in paths {
        let limit = if health_paths.contains(path) {
            400
        } else {
            500
        };
        let url = format!("{}{path}", base.trim_end_matches('/'));
        let mut attempt = 0;
        let probe = loop {
            attempt += 1;
            let (status, error) = match client.get(&url).send().await {
                Ok(r) => (Some(r.status().as_u16()), None),
                Err(e) => (None, Some(e.to_string())),
            };
            let ok = status.is_some_and(|s| s < limit);
            // A few tries: a load balancer may need seconds to use a newly healthy target.
            if ok || attempt >= 3 || Instant::now() >= deadline {
                break Probe {
                    path: path.clone(),
                    service: service.clone(),
                    status,
                    error,
                    ok,
                };
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        };
        reporter.emit(
            "verify",
            Some(service),
            "probe",
            &format!(
                "GET {url} → {}",
                probe.status.map_or_else(
                    || probe.error.clone().unwrap_or_default(),
                    |s| s.to_string()
                )
            ),
        );
        results.push(probe);
    }
    let failed: Vec<String> = results
        .iter()
        .filter(|p| !p.ok)
        .map(|p| {
            format!(
                "GET {}{} ({}) → {}",
                base.trim_end_matches('/'),
                p.path,
                p.service,
                p.status
                    .map_or_else(|| p.error.clone().unwrap_or_default(), |s| s.to_string())
            )
        })
        .collect();
    if failed.is_empty() {
        Ok(results)
    } else {
        Err(Error::Rollout(format!(
            "the new version does not serve through the load balancer:\n    {}",
            failed.join("\n    ")
        )))
    }
}
