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

fn family_revision(arn: &str) -> String {
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
                .take(5)
                .map(|e| Event {
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
