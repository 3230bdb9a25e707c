//! Waiting for ECS rollouts and telling the truth about them: done only when the PRIMARY
//! deployment runs the expected task definition, its rollout is COMPLETED and running equals
//! desired. New service events and stopped tasks are printed once each as they appear.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::report::Reporter;
use crate::aws::cloud::Cloud;
use crate::aws::ecs::{Deployment, ServiceState};
use crate::error::{Error, Result};

/// Consecutive failed polls (throttling, network) tolerated before giving up.
const POLL_FAILURES_TOLERATED: u32 = 5;

/// One service whose rollout is awaited.
#[derive(Debug, Clone)]
pub struct Expected {
    /// learntrac or trac.
    pub service: String,
    /// The ECS service name.
    pub ecs_name: String,
    /// `family:revision` the PRIMARY deployment must run.
    pub task_definition: String,
    /// The deployment started by a forced redeploy; a different PRIMARY means a rollback.
    pub deployment_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct WaitOptions {
    pub timeout: Duration,
    pub poll: Duration,
    /// Service events older than this (seconds since the epoch) are not news.
    pub since: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RolledOut {
    pub service: String,
    pub ecs_name: String,
    pub task_definition: String,
    pub deployment_id: String,
    pub rollout_state: String,
    pub running: i32,
    pub desired: i32,
    pub seconds: f64,
}

/// Waits for every service at once; all failures are reported together.
pub async fn wait_all(
    cloud: &dyn Cloud,
    cluster: &str,
    expected: &[Expected],
    options: &WaitOptions,
    reporter: &Reporter,
) -> Result<Vec<RolledOut>> {
    let waits = expected
        .iter()
        .map(|e| wait_one(cloud, cluster, e, options, reporter));
    let results = futures_util::future::join_all(waits).await;
    let mut done = Vec::new();
    let mut failures = Vec::new();
    for r in results {
        match r {
            Ok(d) => done.push(d),
            Err(e) => failures.push(e),
        }
    }
    if failures.is_empty() {
        return Ok(done);
    }
    // The most telling failure decides the exit code: a failed rollout, then a timeout.
    let message = failures
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    Err(if failures.iter().any(|e| matches!(e, Error::Rollout(_))) {
        Error::Rollout(message)
    } else if failures.iter().any(|e| matches!(e, Error::Timeout(_))) {
        Error::Timeout(message)
    } else {
        failures.remove(0)
    })
}

struct Watch<'a> {
    expected: &'a Expected,
    events_seen: HashSet<String>,
    tasks_seen: HashSet<String>,
    /// Reasons of stopped tasks of the new task definition, for the failure message.
    stopped: Vec<String>,
    last_event: Option<String>,
}

async fn wait_one(
    cloud: &dyn Cloud,
    cluster: &str,
    expected: &Expected,
    options: &WaitOptions,
    reporter: &Reporter,
) -> Result<RolledOut> {
    let started = Instant::now();
    let name = expected.service.as_str();
    let line = reporter.line(name);
    let mut watch = Watch {
        expected,
        events_seen: HashSet::new(),
        tasks_seen: HashSet::new(),
        stopped: Vec::new(),
        last_event: None,
    };
    let mut failures = 0;
    let mut last_state = String::new();
    let names = [expected.ecs_name.clone()];
    loop {
        match cloud.services(cluster, &names).await {
            Err(e) => {
                failures += 1;
                if failures > POLL_FAILURES_TOLERATED {
                    return Err(e);
                }
                reporter.warn(
                    "wait",
                    Some(name),
                    &format!("{e} (attempt {failures}, retrying)"),
                );
            }
            Ok(services) => {
                failures = 0;
                let Some(state) = services.into_iter().find(|s| s.name == expected.ecs_name) else {
                    return Err(Error::Rollout(format!(
                        "{name}: ECS service {} does not exist in cluster {cluster}",
                        expected.ecs_name
                    )));
                };
                watch.news(&state, options.since, reporter);
                if let Ok(tasks) = cloud.stopped_tasks(cluster, &expected.ecs_name).await {
                    for t in tasks {
                        if t.task_definition == expected.task_definition
                            && watch.tasks_seen.insert(t.id.clone())
                        {
                            let text = format!("task {} stopped: {}", t.id, t.describe());
                            reporter.emit("wait", Some(name), "task_stopped", &text);
                            // What the container said last is usually why it stopped.
                            let tail = cloud.log_tail(&expected.ecs_name, &t.id).await;
                            let text = if tail.is_empty() {
                                text
                            } else {
                                format!(
                                    "{text}; its last lines:\n{}",
                                    tail.iter()
                                        .map(|l| format!(
                                            "        | {}",
                                            crate::ui::text::printable(l.trim_end())
                                        ))
                                        .collect::<Vec<_>>()
                                        .join("\n")
                                )
                            };
                            watch.stopped.push(text);
                        }
                    }
                }
                match watch.verdict(&state)? {
                    Some(primary) => {
                        let seconds = started.elapsed().as_secs_f64();
                        line.finish(&format!(
                            "{} rolled out: {}/{} running ({seconds:.1}s)",
                            primary.task_definition, state.running, state.desired
                        ));
                        return Ok(RolledOut {
                            service: expected.service.clone(),
                            ecs_name: expected.ecs_name.clone(),
                            task_definition: primary.task_definition,
                            deployment_id: primary.id,
                            rollout_state: primary.rollout_state.unwrap_or_default(),
                            running: state.running,
                            desired: state.desired,
                            seconds: (seconds * 10.0).round() / 10.0,
                        });
                    }
                    None => {
                        let now = describe(&state);
                        if now != last_state {
                            line.message(&now);
                            last_state = now;
                        }
                    }
                }
            }
        }
        if started.elapsed() >= options.timeout {
            return Err(Error::Timeout(format!(
                "{name}: the rollout of {} did not complete within {}s; last state: {}{}{}\n    hint: `learntrac status ENV` shows it; raise --timeout or deploy.rollout_timeout if it is only slow",
                expected.task_definition,
                options.timeout.as_secs(),
                if last_state.is_empty() {
                    "unknown"
                } else {
                    &last_state
                },
                watch
                    .last_event
                    .as_ref()
                    .map(|e| format!("; last event: {e}"))
                    .unwrap_or_default(),
                watch.stopped_summary(),
            )));
        }
        tokio::time::sleep(options.poll).await;
    }
}

impl Watch<'_> {
    /// Prints service events not printed before, oldest first.
    fn news(&mut self, state: &ServiceState, since: i64, reporter: &Reporter) {
        for e in state.events.iter().rev() {
            if e.at.is_some_and(|t| t < since) || !self.events_seen.insert(e.id.clone()) {
                continue;
            }
            reporter.emit(
                "wait",
                Some(&self.expected.service),
                "ecs_event",
                &e.message,
            );
            self.last_event = Some(e.message.clone());
        }
    }

    /// Some(PRIMARY) when done, None while in progress, Err on a failure or rollback.
    fn verdict(&self, state: &ServiceState) -> Result<Option<Deployment>> {
        let name = &self.expected.service;
        let Some(primary) = state.deployments.iter().find(|d| d.status == "PRIMARY") else {
            return Ok(None);
        };
        let ours = state.deployments.iter().find(|d| self.is_ours(d));
        let rolled_back = primary.task_definition != self.expected.task_definition
            || self
                .expected
                .deployment_id
                .as_ref()
                .is_some_and(|id| &primary.id != id);
        if rolled_back {
            return Err(Error::Rollout(format!(
                "{name}: rolled back: the PRIMARY deployment runs {} instead of {}{}{}",
                primary.task_definition,
                self.expected.task_definition,
                ours.and_then(|d| d.rollout_reason.as_ref())
                    .map(|r| format!("; reason: {r}"))
                    .unwrap_or_default(),
                self.stopped_summary()
            )));
        }
        if primary.rollout_state.as_deref() == Some("FAILED") {
            return Err(Error::Rollout(format!(
                "{name}: the rollout of {} FAILED: {}{}",
                primary.task_definition,
                primary
                    .rollout_reason
                    .as_deref()
                    .unwrap_or("no reason given"),
                self.stopped_summary()
            )));
        }
        let completed = match primary.rollout_state.as_deref() {
            Some(s) => s == "COMPLETED",
            // Services without the ECS deployment controller report no rollout state.
            None => state.deployments.len() == 1,
        };
        if completed && state.running == state.desired {
            return Ok(Some(primary.clone()));
        }
        Ok(None)
    }

    fn is_ours(&self, d: &Deployment) -> bool {
        match &self.expected.deployment_id {
            Some(id) => &d.id == id,
            None => d.task_definition == self.expected.task_definition,
        }
    }

    fn stopped_summary(&self) -> String {
        if self.stopped.is_empty() {
            return String::new();
        }
        let last: Vec<String> = self
            .stopped
            .iter()
            .rev()
            .take(3)
            .map(|s| format!("\n    {s}"))
            .collect();
        format!("; stopped tasks:{}", last.join(""))
    }
}

fn describe(state: &ServiceState) -> String {
    let deployments: Vec<String> = state
        .deployments
        .iter()
        .map(|d| {
            format!(
                "{} {} {} {}/{}",
                d.status,
                d.task_definition,
                d.rollout_state.as_deref().unwrap_or("-"),
                d.running,
                d.desired
            )
        })
        .collect();
    format!(
        "running {}/{} pending {}; {}",
        state.running,
        state.desired,
        state.pending,
        deployments.join(", ")
    )
}
