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
    Ok(primary_deployment(out.service()))
}

/// The id of a service's PRIMARY deployment (the one an update just started).
fn primary_deployment(service: Option<&aws_sdk_ecs::types::Service>) -> Option<String> {
    service
        .and_then(|s| {
            s.deployments()
                .iter()
                .find(|d| d.status() == Some("PRIMARY"))
        })
        .and_then(|d| d.id())
        .map(String::from)
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
    Ok(first_image(&definition(client, task_definition).await?))
}

pub fn first_image(td: &aws_sdk_ecs::types::TaskDefinition) -> Option<String> {
    td.container_definitions()
        .first()
        .and_then(|c| c.image())
        .map(String::from)
}

/// Points the service at another task definition; returns the new deployment's id.
pub async fn update_task_definition(
    client: &Client,
    cluster: &str,
    service: &str,
    task_definition: &str,
) -> Result<Option<String>> {
    let out = client
        .update_service()
        .cluster(cluster)
        .service(service)
        .task_definition(task_definition)
        .send()
        .await
        .map_err(|e| super::error("update the service's task definition", service, e))?;
    Ok(primary_deployment(out.service()))
}

/// The ACTIVE revisions of a family, newest first, as `family:revision`.
pub async fn revisions(client: &Client, family: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut pages = client
        .list_task_definitions()
        .family_prefix(family)
        .status(aws_sdk_ecs::types::TaskDefinitionStatus::Active)
        .sort(aws_sdk_ecs::types::SortOrder::Desc)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| super::error("list the task definitions", family, e))?;
        out.extend(
            page.task_definition_arns()
                .iter()
                .map(|a| family_revision(a))
                // The prefix filter also matches longer family names.
                .filter(|fr| fr.rsplit_once(':').is_some_and(|(f, _)| f == family)),
        );
    }
    Ok(out)
}

/// Deregisters `family:revision` (it goes INACTIVE: nothing can run or roll back to it).
pub async fn deregister(client: &Client, family_revision: &str) -> Result<()> {
    client
        .deregister_task_definition()
        .task_definition(family_revision)
        .send()
        .await
        .map_err(|e| super::error("deregister the task definition", family_revision, e))?;
    Ok(())
}

/// A task definition as ECS describes it.
pub async fn definition(
    client: &Client,
    task_definition: &str,
) -> Result<aws_sdk_ecs::types::TaskDefinition> {
    Ok(definition_and_tags(client, task_definition).await?.0)
}

/// A task definition and its tags (ECS returns a revision's tags only when asked).
pub async fn definition_and_tags(
    client: &Client,
    task_definition: &str,
) -> Result<(
    aws_sdk_ecs::types::TaskDefinition,
    Vec<aws_sdk_ecs::types::Tag>,
)> {
    let out = client
        .describe_task_definition()
        .task_definition(task_definition)
        .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
        .send()
        .await
        .map_err(|e| super::error("describe the task definition", task_definition, e))?;
    let tags = out.tags.clone().unwrap_or_default();
    let td = out
        .task_definition
        .ok_or_else(|| crate::error::Error::Aws {
            what: "describe the task definition".into(),
            which: task_definition.into(),
            cause: "the answer holds no task definition".into(),
        })?;
    Ok((td, tags))
}

/// Whether two task definitions would run the same tasks (revision and dates aside).
pub fn same_tasks(
    a: &aws_sdk_ecs::types::TaskDefinition,
    b: &aws_sdk_ecs::types::TaskDefinition,
) -> bool {
    a.family() == b.family()
        && a.container_definitions() == b.container_definitions()
        && a.volumes() == b.volumes()
        && a.cpu() == b.cpu()
        && a.memory() == b.memory()
        && a.task_role_arn() == b.task_role_arn()
        && a.execution_role_arn() == b.execution_role_arn()
        && a.network_mode() == b.network_mode()
        && a.runtime_platform() == b.runtime_platform()
        && a.ephemeral_storage() == b.ephemeral_storage()
}

/// What a revision takes from the stack rather than from the code: its roles, volumes, and
/// its first container's secrets and mounts. The names of those that differ between `a`
/// and `b` — a revision made from another stack template brings its old ones back.
pub fn stack_differences(
    a: &aws_sdk_ecs::types::TaskDefinition,
    b: &aws_sdk_ecs::types::TaskDefinition,
) -> Vec<&'static str> {
    let first =
        |td: &aws_sdk_ecs::types::TaskDefinition| td.container_definitions().first().cloned();
    let (ca, cb) = (first(a), first(b));
    let mut out = Vec::new();
    if a.task_role_arn() != b.task_role_arn() {
        out.push("task role");
    }
    if a.execution_role_arn() != b.execution_role_arn() {
        out.push("execution role");
    }
    if a.volumes() != b.volumes() {
        out.push("volumes");
    }
    if ca.as_ref().map(|c| c.secrets()) != cb.as_ref().map(|c| c.secrets()) {
        out.push("secrets");
    }
    if ca.as_ref().map(|c| c.mount_points()) != cb.as_ref().map(|c| c.mount_points()) {
        out.push("mount points");
    }
    out
}

/// `family:revision` → the revision number.
pub fn revision_number(family_revision: &str) -> Option<i32> {
    family_revision.rsplit_once(':')?.1.parse().ok()
}

/// A template task definition (what Terraform registers) as the service's own family
/// running `image` in its first container — and in every other container that ran the
/// same image (the service's db-roles container ships with the service's code).
pub fn derive(
    template: &aws_sdk_ecs::types::TaskDefinition,
    family: &str,
    image: &str,
) -> aws_sdk_ecs::types::TaskDefinition {
    let mut td = template.clone();
    td.family = Some(family.to_string());
    let templated = first_image(template);
    for c in td.container_definitions.iter_mut().flatten() {
        if c.image.is_some() && c.image == templated {
            c.image = Some(image.to_string());
        }
    }
    td
}

/// Registers a task definition with `tags` (the template's: its default tags, which an
/// organisation's policy may require on every registration); returns its `family:revision`.
pub async fn register(
    client: &Client,
    td: &aws_sdk_ecs::types::TaskDefinition,
    tags: &[aws_sdk_ecs::types::Tag],
) -> Result<String> {
    let family = td.family().unwrap_or_default();
    let out = client
        .register_task_definition()
        .family(family)
        .set_tags((!tags.is_empty()).then(|| tags.to_vec()))
        .set_task_role_arn(td.task_role_arn().map(String::from))
        .set_execution_role_arn(td.execution_role_arn().map(String::from))
        .set_network_mode(td.network_mode().cloned())
        .set_container_definitions(Some(td.container_definitions().to_vec()))
        .set_volumes(Some(td.volumes().to_vec()))
        .set_placement_constraints(Some(td.placement_constraints().to_vec()))
        .set_requires_compatibilities(Some(td.requires_compatibilities().to_vec()))
        .set_cpu(td.cpu().map(String::from))
        .set_memory(td.memory().map(String::from))
        .set_pid_mode(td.pid_mode().cloned())
        .set_ipc_mode(td.ipc_mode().cloned())
        .set_proxy_configuration(td.proxy_configuration().cloned())
        .set_runtime_platform(td.runtime_platform().cloned())
        .set_ephemeral_storage(td.ephemeral_storage().cloned())
        .send()
        .await
        .map_err(|e| super::error("register the task definition", family, e))?;
    Ok(family_revision(
        out.task_definition()
            .and_then(|t| t.task_definition_arn())
            .unwrap_or_default(),
    ))
}

#[cfg(test)]
mod stack_template_tests {
    use aws_sdk_ecs::types::{ContainerDefinition, Secret, TaskDefinition};

    use super::stack_differences;

    fn revision(role: &str, secret: &str, image: &str) -> TaskDefinition {
        TaskDefinition::builder()
            .family("learntrac-dev-learntrac")
            .task_role_arn(role)
            .execution_role_arn("arn:aws:iam::1:role/exec")
            .container_definitions(
                ContainerDefinition::builder()
                    .image(image)
                    .secrets(
                        Secret::builder()
                            .name("DATABASE_PASSWORD")
                            .value_from(secret)
                            .build()
                            .expect("a secret"),
                    )
                    .build(),
            )
            .build()
    }

    #[test]
    fn another_image_is_code_another_role_or_secret_is_the_stack() {
        let now = revision(
            "arn:aws:iam::1:role/task",
            "/p/dev/db/password",
            "repo@sha256:b",
        );
        let older_code = revision(
            "arn:aws:iam::1:role/task",
            "/p/dev/db/password",
            "repo@sha256:a",
        );
        assert!(stack_differences(&older_code, &now).is_empty());
        let older_stack = revision(
            "arn:aws:iam::1:role/old-task",
            "/p/dev/db/old",
            "repo@sha256:a",
        );
        assert_eq!(
            stack_differences(&older_stack, &now),
            vec!["task role", "secrets"]
        );
    }
}
