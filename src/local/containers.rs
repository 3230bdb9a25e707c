//! The Docker runtime's containers: one network and named volumes per stack, one container
//! per component, labelled with a hash of its configuration so `up` recreates only what
//! changed, and awaited until Docker reports it healthy.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, HealthConfig, HostConfig, NetworkCreateRequest, PortBinding,
    VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, ListContainersOptionsBuilder,
    ListVolumesOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
};
use futures_util::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

const STACK_LABEL: &str = "dev.learntrac.stack";
const COMPONENT_LABEL: &str = "dev.learntrac.component";
const HASH_LABEL: &str = "dev.learntrac.config-hash";

/// Lines of a failing component's log shown with the error.
const LOG_TAIL: usize = 20;

/// One container of the stack.
#[derive(Debug, Clone, Serialize)]
pub struct Component {
    /// postgres, redis, trac.
    pub name: String,
    pub image: String,
    pub env: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    /// Container port, published on 127.0.0.1 at a port Docker picks.
    pub port: u16,
    /// Mount path of the component's named volume.
    pub volume: Option<String>,
    /// CMD-SHELL health test; None keeps the image's own HEALTHCHECK test.
    pub health: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Created,
    Recreated,
    Started,
    Unchanged,
}

#[derive(Debug, Clone)]
pub struct Running {
    pub component: String,
    pub container: String,
    pub action: Action,
    /// The published port on 127.0.0.1.
    pub host_port: u16,
}

#[derive(Debug, Clone)]
pub struct Listed {
    pub component: String,
    pub container: String,
    pub state: String,
    pub health: String,
    pub ports: String,
}

fn docker_error(component: &str, what: &str, e: impl std::fmt::Display) -> Error {
    Error::Local {
        component: component.to_string(),
        message: format!("{what}: {e}"),
    }
}

/// The stack's network, created when missing.
pub async fn ensure_network(docker: &Docker, stack: &str) -> Result<()> {
    if docker
        .inspect_network(
            stack,
            None::<bollard::query_parameters::InspectNetworkOptions>,
        )
        .await
        .is_ok()
    {
        return Ok(());
    }
    docker
        .create_network(NetworkCreateRequest {
            name: stack.to_string(),
            labels: Some(HashMap::from([(
                STACK_LABEL.to_string(),
                stack.to_string(),
            )])),
            ..Default::default()
        })
        .await
        .map(|_| ())
        .map_err(|e| docker_error("network", &format!("cannot create network {stack}"), e))
}

/// What identifies the image's content: the build-context hash learntrac labels its own
/// images with (a rebuild for a new commit with the same context is the same content), else
/// the image id.
fn content_of(i: bollard::models::ImageInspect) -> String {
    i.config
        .as_ref()
        .and_then(|c| c.labels.as_ref())
        .and_then(|l| l.get("dev.learntrac.context-sha256").cloned())
        .unwrap_or_else(|| i.id.unwrap_or_default())
}

/// Pulls the image when the engine does not have it.
pub async fn ensure_image(docker: &Docker, component: &str, image: &str) -> Result<String> {
    if let Ok(i) = docker.inspect_image(image).await {
        return Ok(content_of(i));
    }
    let options = CreateImageOptionsBuilder::default()
        .from_image(image)
        .build();
    let mut pull = docker.create_image(Some(options), None, None);
    while let Some(step) = pull.next().await {
        step.map_err(|e| docker_error(component, &format!("cannot pull {image}"), e))?;
    }
    docker
        .inspect_image(image)
        .await
        .map(content_of)
        .map_err(|e| docker_error(component, &format!("no image {image}"), e))
}

/// Creates, recreates (configuration changed), starts (stopped) or keeps the component's
/// container; returns what it did and the published port.
pub async fn ensure(docker: &Docker, stack: &str, c: &Component) -> Result<Running> {
    // The configuration with the image's content in place of its name: a new tag of the
    // same content changes nothing, different content under the same tag does.
    let content = ensure_image(docker, &c.name, &c.image).await?;
    let hash = {
        let hashed = Component {
            image: content,
            ..c.clone()
        };
        let mut h = Sha256::new();
        h.update(serde_json::to_vec(&hashed).unwrap_or_default());
        format!("{:x}", h.finalize())
    };
    let name = format!("{stack}-{}", c.name);
    let mut action = Action::Created;
    if let Ok(existing) = docker
        .inspect_container(
            &name,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
    {
        let same = existing
            .config
            .as_ref()
            .and_then(|cfg| cfg.labels.as_ref())
            .and_then(|l| l.get(HASH_LABEL))
            == Some(&hash);
        if same {
            let running = existing
                .state
                .as_ref()
                .and_then(|s| s.running)
                .unwrap_or(false);
            if !running {
                docker
                    .start_container(
                        &name,
                        None::<bollard::query_parameters::StartContainerOptions>,
                    )
                    .await
                    .map_err(|e| docker_error(&c.name, "cannot start", e))?;
            }
            return Ok(Running {
                component: c.name.clone(),
                host_port: published_port(docker, &name, c).await?,
                container: name,
                action: if running {
                    Action::Unchanged
                } else {
                    Action::Started
                },
            });
        }
        remove(docker, &name).await?;
        action = Action::Recreated;
    }
    let port_key = format!("{}/tcp", c.port);
    let mut binds = Vec::new();
    if let Some(path) = &c.volume {
        let volume = format!("{name}-data");
        docker
            .create_volume(VolumeCreateRequest {
                name: Some(volume.clone()),
                labels: Some(HashMap::from([(
                    STACK_LABEL.to_string(),
                    stack.to_string(),
                )])),
                ..Default::default()
            })
            .await
            .map_err(|e| docker_error(&c.name, "cannot create its volume", e))?;
        binds.push(format!("{volume}:{path}"));
    }
    let second = 1_000_000_000_i64;
    let body = ContainerCreateBody {
        image: Some(c.image.clone()),
        env: Some(c.env.clone()),
        entrypoint: c.entrypoint.clone(),
        cmd: c.cmd.clone(),
        exposed_ports: Some(vec![port_key.clone()]),
        labels: Some(HashMap::from([
            (STACK_LABEL.to_string(), stack.to_string()),
            (COMPONENT_LABEL.to_string(), c.name.clone()),
            (HASH_LABEL.to_string(), hash),
        ])),
        // Frequent checks: `up` waits for the first healthy one. A missing test keeps the
        // image's own HEALTHCHECK command with these timings.
        healthcheck: Some(HealthConfig {
            test: c
                .health
                .as_ref()
                .map(|t| vec!["CMD-SHELL".to_string(), t.clone()]),
            interval: Some(2 * second),
            timeout: Some(5 * second),
            retries: Some(3),
            start_period: Some(0),
            start_interval: None,
        }),
        host_config: Some(HostConfig {
            network_mode: Some(stack.to_string()),
            binds: Some(binds),
            port_bindings: Some(HashMap::from([(
                port_key,
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some(String::new()),
                }]),
            )])),
            ..Default::default()
        }),
        ..Default::default()
    };
    let options = CreateContainerOptionsBuilder::default().name(&name).build();
    docker
        .create_container(Some(options), body)
        .await
        .map_err(|e| docker_error(&c.name, "cannot create its container", e))?;
    docker
        .start_container(
            &name,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
        .map_err(|e| docker_error(&c.name, "cannot start its container", e))?;
    Ok(Running {
        component: c.name.clone(),
        host_port: published_port(docker, &name, c).await?,
        container: name,
        action,
    })
}

async fn published_port(docker: &Docker, name: &str, c: &Component) -> Result<u16> {
    let inspect = docker
        .inspect_container(
            name,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
        .map_err(|e| docker_error(&c.name, "cannot inspect its container", e))?;
    inspect
        .network_settings
        .and_then(|n| n.ports)
        .and_then(|p| p.get(&format!("{}/tcp", c.port)).cloned().flatten())
        .and_then(|b| b.first().and_then(|b| b.host_port.clone()))
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| Error::Local {
            component: c.name.clone(),
            message: format!("port {} is not published", c.port),
        })
}

/// Waits until Docker reports the container healthy; a container that exits, or stays
/// unhealthy past the timeout, fails with the reason and its last log lines.
pub async fn wait_healthy(
    docker: &Docker,
    component: &str,
    container: &str,
    timeout: Duration,
) -> Result<()> {
    let started = Instant::now();
    loop {
        let inspect = docker
            .inspect_container(
                container,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .map_err(|e| docker_error(component, "cannot inspect its container", e))?;
        let state = inspect.state.unwrap_or_default();
        let health = state
            .health
            .as_ref()
            .and_then(|h| h.status)
            .map(|s| s.to_string())
            .unwrap_or_default();
        if health == "healthy" {
            return Ok(());
        }
        let exited = !state.running.unwrap_or(false);
        if exited || started.elapsed() >= timeout {
            let why = if exited {
                format!("exited with code {}", state.exit_code.unwrap_or(-1))
            } else {
                let last = state
                    .health
                    .and_then(|h| h.log)
                    .and_then(|l| l.last().cloned())
                    .and_then(|r| r.output)
                    .map(|o| format!("; last check: {}", o.trim()))
                    .unwrap_or_default();
                format!(
                    "not healthy after {}s (status {}){last}",
                    timeout.as_secs(),
                    if health.is_empty() {
                        "unknown"
                    } else {
                        &health
                    }
                )
            };
            return Err(Error::Local {
                component: component.to_string(),
                message: format!(
                    "{why}\n    last log lines of {container}:\n{}",
                    log_tail(docker, container, LOG_TAIL).await
                ),
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The container's last `n` log lines, indented.
pub async fn log_tail(docker: &Docker, container: &str, n: usize) -> String {
    let options = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .tail(&n.to_string())
        .build();
    let mut logs = docker.logs(container, Some(options));
    let mut text = String::new();
    while let Some(Ok(chunk)) = logs.next().await {
        text.push_str(&chunk.to_string());
    }
    text.lines()
        .map(|l| format!("      {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Removes one container if it exists.
pub async fn remove_if_present(docker: &Docker, name: &str) -> Result<bool> {
    if docker
        .inspect_container(
            name,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
        .is_err()
    {
        return Ok(false);
    }
    remove(docker, name).await.map(|()| true)
}

async fn remove(docker: &Docker, name: &str) -> Result<()> {
    let options = RemoveContainerOptionsBuilder::default().force(true).build();
    docker
        .remove_container(name, Some(options))
        .await
        .map_err(|e| docker_error(name, "cannot remove its container", e))
}

/// Selects what belongs to the stack (containers, volumes) by its label.
fn stack_filter(stack: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), vec![format!("{STACK_LABEL}={stack}")])])
}

/// The stack's containers with state, health and ports.
pub async fn list(docker: &Docker, stack: &str) -> Result<Vec<Listed>> {
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&stack_filter(stack))
        .build();
    let containers = docker
        .list_containers(Some(options))
        .await
        .map_err(|e| docker_error("stack", "cannot list containers", e))?;
    let mut out: Vec<Listed> = containers
        .into_iter()
        .map(|c| {
            let status = c.status.unwrap_or_default();
            Listed {
                component: c
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(COMPONENT_LABEL).cloned())
                    .unwrap_or_default(),
                container: c
                    .names
                    .and_then(|n| n.first().cloned())
                    .unwrap_or_default()
                    .trim_start_matches('/')
                    .to_string(),
                state: c.state.map(|s| s.to_string()).unwrap_or_default(),
                health: if status.contains("(healthy)") {
                    "healthy".into()
                } else if status.contains("(unhealthy)") {
                    "unhealthy".into()
                } else if status.contains("(health: starting)") {
                    "starting".into()
                } else {
                    "-".into()
                },
                ports: c
                    .ports
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|p| {
                        Some(format!(
                            "{}:{}->{}",
                            p.ip.as_deref()?,
                            p.public_port?,
                            p.private_port
                        ))
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            }
        })
        .collect();
    out.sort_by(|a, b| a.component.cmp(&b.component));
    Ok(out)
}

/// Removes the stack's containers and network; its volumes too when asked.
/// Returns the names of what was removed.
pub async fn remove_stack(docker: &Docker, stack: &str, volumes: bool) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for c in list(docker, stack).await? {
        remove(docker, &c.container).await?;
        removed.push(c.container);
    }
    if docker.remove_network(stack).await.is_ok() {
        removed.push(format!("network {stack}"));
    }
    if volumes {
        let options = ListVolumesOptionsBuilder::default()
            .filters(&stack_filter(stack))
            .build();
        let listed = docker
            .list_volumes(Some(options))
            .await
            .map_err(|e| docker_error("stack", "cannot list volumes", e))?;
        for v in listed.volumes.unwrap_or_default() {
            docker
                .remove_volume(
                    &v.name,
                    None::<bollard::query_parameters::RemoveVolumeOptions>,
                )
                .await
                .map_err(|e| {
                    docker_error("stack", &format!("cannot remove volume {}", v.name), e)
                })?;
            removed.push(format!("volume {}", v.name));
        }
    }
    Ok(removed)
}
