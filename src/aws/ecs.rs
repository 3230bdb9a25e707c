//! ECS: what each service runs and how its rollout goes.

use aws_sdk_ecs::Client;
use serde::Serialize;

use crate::error::Result;

#[derive(Debug, Clone, Serialize)]
pub struct Deployment {
    pub id: String,
    /// PRIMARY (the newest) or ACTIVE (being replaced).
    pub status: String,
    /// `family:revision`
    pub task_definition: String,
    pub rollout_state: Option<String>,
    pub rollout_reason: Option<String>,
    pub desired: i32,
    pub running: i32,
    pub pending: i32,
    pub failed_tasks: i32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub id: String,
    /// Seconds since the epoch.
    pub at: Option<i64>,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceState {
    pub name: String,
    pub status: String,
    pub desired: i32,
    pub running: i32,
    pub pending: i32,
    pub deployments: Vec<Deployment>,
    /// Newest first.
    pub events: Vec<Event>,
    pub task_definition_arn: Option<String>,
}

/// ECS keeps 100 events per service; a poll every few seconds never misses one among 20.
const EVENTS_KEPT: usize = 20;

/// A task that stopped, and why.
#[derive(Debug, Clone, Serialize)]
pub struct StoppedTask {
    /// The task id (last part of its ARN).
    pub id: String,
    /// `family:revision`
    pub task_definition: String,
    pub reason: String,
    /// Per container: name, exit code and reason, e.g. `app: exit 1`.
    pub containers: Vec<String>,
}

impl StoppedTask {
    pub fn describe(&self) -> String {
        if self.containers.is_empty() {
            self.reason.clone()
        } else {
            format!("{} ({})", self.reason, self.containers.join("; "))
        }
    }
}

/// The service's recently stopped tasks (ECS keeps them for about an hour).
pub async fn stopped_tasks(
    client: &Client,
    cluster: &str,
    service: &str,
) -> Result<Vec<StoppedTask>> {
    let listed = client
        .list_tasks()
        .cluster(cluster)
        .service_name(service)
        .desired_status(aws_sdk_ecs::types::DesiredStatus::Stopped)
        .send()
        .await
        .map_err(|e| super::error("list the stopped tasks", service, e))?;
    let arns = listed.task_arns().to_vec();
    if arns.is_empty() {
        return Ok(Vec::new());
    }
    let described = client
        .describe_tasks()
        .cluster(cluster)
        .set_tasks(Some(arns))
        .send()
        .await
        .map_err(|e| super::error("describe the stopped tasks", service, e))?;
    Ok(described
        .tasks()
        .iter()
        .map(|t| StoppedTask {
            id: family_revision(t.task_arn().unwrap_or_default()),
            task_definition: family_revision(t.task_definition_arn().unwrap_or_default()),
            reason: t.stopped_reason().unwrap_or("no reason given").to_string(),
            containers: t
                .containers()
                .iter()
                .filter(|c| c.exit_code().is_some_and(|x| x != 0) || c.reason().is_some())
                .map(|c| {
                    let mut s = c.name().unwrap_or("container").to_string();
                    if let Some(code) = c.exit_code() {
                        s.push_str(&format!(": exit {code}"));
                    }
                    if let Some(r) = c.reason() {
                        s.push_str(&format!(": {r}"));
                    }
                    s
                })
                .collect(),
        })
        .collect())
}

/// Starts a new deployment of the service's current task definition; returns its id.
pub async fn force_new_deployment(
    client: &Client,
    cluster: &str,
    service: &str,
) -> Result<Option<String>> {
    let out = client
        .update_service()
        .cluster(cluster)
        .service(service)
        .force_new_deployment(true)
        .send()
        .await
        .map_err(|e| super::error("force a new deployment", service, e))?;
    Ok(out
        .service()
        .and_then(|s| {
            s.deployments()
                .iter()
                .find(|d| d.status() == Some("PRIMARY"))
        })
        .and_then(|d| d.id())
        .map(String::from))
}

pub fn family_revision(arn: &str) -> String {
    arn.rsplit('/').next().unwrap_or(arn).to_string()
}

/// The named services of a cluster; absent ones are left out.
pub async fn services(
    client: &Client,
    cluster: &str,
    names: &[String],
) -> Result<Vec<ServiceState>> {
    let out = client
        .describe_services()
        .cluster(cluster)
        .set_services(Some(names.to_vec()))
        .send()
        .await
        .map_err(|e| super::error("describe the ECS services", cluster, e))?;
    Ok(out
        .services()
        .iter()
        .map(|s| ServiceState {
            name: s.service_name().unwrap_or_default().to_string(),
            status: s.status().unwrap_or_default().to_string(),
            desired: s.desired_count(),
            running: s.running_count(),
            pending: s.pending_count(),
            deployments: s
                .deployments()
                .iter()
                .map(|d| Deployment {
                    id: d.id().unwrap_or_default().to_string(),
                    status: d.status().unwrap_or_default().to_string(),
                    task_definition: family_revision(d.task_definition().unwrap_or_default()),
                    rollout_state: d.rollout_state().map(|r| r.as_str().to_string()),
                    rollout_reason: d.rollout_state_reason().map(String::from),
                    desired: d.desired_count(),
                    running: d.running_count(),
                    pending: d.pending_count(),
                    failed_tasks: d.failed_tasks(),
                })
                .collect(),
            events: s
                .events()
                .iter()
                .take(EVENTS_KEPT)
                .map(|e| Event {
                    id: e.id().unwrap_or_default().to_string(),
                    at: e.created_at().map(|t| t.secs()),
                    message: e.message().unwrap_or_default().to_string(),
                })
                .collect(),
            task_definition_arn: s.task_definition().map(String::from),
        })
        .collect())
}

/// Image of the first container of a task definition.
pub async fn image_of(client: &Client, task_definition: &str) -> Result<Option<String>> {
    let out = client
        .describe_task_definition()
        .task_definition(task_definition)
        .send()
        .await
        .map_err(|e| super::error("describe the task definition", task_definition, e))?;
    Ok(out
        .task_definition()
        .and_then(|t| t.container_definitions().first())
        .and_then(|c| c.image())
        .map(String::from))
}
