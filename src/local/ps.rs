//! `learntrac local ps`: what runs, from the data folder's record, the router's health
//! check and the Engine's container list.

use std::time::Duration;

use serde::Serialize;

use crate::Ctx;
use crate::local::containers;
use crate::local::state::{DataDir, TracRecord};
use crate::local::up::environment;

/// One row of `local ps`.
#[derive(Serialize)]
pub struct Component {
    pub name: String,
    pub state: String,
    pub health: String,
    pub ports: String,
}

/// The stack as `local ps` shows it: which runtime recorded it, and each component.
#[derive(Serialize)]
pub struct Stack {
    pub runtime: Option<String>,
    pub components: Vec<Component>,
}

pub fn ps(data: &DataDir, ctx: &Ctx) -> Stack {
    let running = data.running();
    let healthy = running.as_ref().is_some_and(|r| {
        learntrac_service::healthcheck::probe(r.router_port, Duration::from_secs(2)).is_ok()
    });
    let port = running
        .as_ref()
        .map_or(String::new(), |r| format!("127.0.0.1:{}", r.router_port));
    let up = |s: &str| {
        if running.is_some() {
            s.to_string()
        } else {
            "stopped".to_string()
        }
    };
    let mut comps = vec![
        Component {
            name: "router".into(),
            state: up("running"),
            health: up(if healthy { "healthy" } else { "unhealthy" }),
            ports: port.clone(),
        },
        Component {
            name: "learntrac".into(),
            state: up("running (in-process)"),
            health: up(if healthy { "healthy" } else { "unhealthy" }),
            ports: port,
        },
    ];
    let listed = docker_containers(env_prefix(ctx).as_deref());
    let embedded = running.as_ref().is_some_and(|r| r.runtime == "embedded");
    if listed.is_empty() {
        let tracd = running
            .as_ref()
            .and_then(|r| r.trac.clone())
            .filter(TracRecord::alive);
        match tracd {
            Some(t) => comps.push(Component {
                name: "trac".into(),
                state: format!("running (tracd pid {})", t.pid),
                health: if answers(t.port) {
                    "healthy"
                } else {
                    "unhealthy"
                }
                .into(),
                ports: format!("127.0.0.1:{}", t.port),
            }),
            None => comps.push(Component {
                name: "trac".into(),
                state: if embedded {
                    "not running (`learntrac local logs trac` says why)"
                } else {
                    "not running"
                }
                .into(),
                health: "-".into(),
                ports: String::new(),
            }),
        }
        for (name, state) in [
            ("postgres", "not used (SQLite)"),
            ("redis", "not used (in-process cache)"),
        ] {
            let state = if embedded { state } else { "not running" };
            comps.push(Component {
                name: name.into(),
                state: state.into(),
                health: "-".into(),
                ports: String::new(),
            });
        }
    }
    for c in listed {
        comps.push(Component {
            name: c.component,
            state: format!("{} (container {})", c.state, c.container),
            health: c.health,
            ports: c.ports,
        });
    }
    Stack {
        runtime: running.as_ref().map(|r| r.runtime.clone()),
        components: comps,
    }
}

/// Whether a local HTTP server answers its front page below 400.
fn answers(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut sock) = std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(2),
    ) else {
        return false;
    };
    let _ = sock.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = [0u8; 12];
    sock.write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_ok()
        && sock.read_exact(&mut head).is_ok()
        && matches!(&head[9..10], b"2" | b"3")
}

/// `learntrac-local`: the name prefix of the local stack's containers.
pub fn env_prefix(ctx: &Ctx) -> Option<String> {
    environment(ctx.root().ok().as_deref(), ctx)
        .ok()
        .map(|e| e.name_prefix())
}

/// The stack's containers, when a Docker Engine answers.
pub fn docker_containers(stack: Option<&str>) -> Vec<containers::Listed> {
    let Some(stack) = stack else {
        return Vec::new();
    };
    let Ok(runtime) = tokio::runtime::Runtime::new() else {
        return Vec::new();
    };
    runtime.block_on(async {
        match crate::docker::connect().await {
            Ok(docker) => containers::list(&docker, stack).await.unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    })
}
