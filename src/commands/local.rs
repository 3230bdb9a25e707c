//! `learntrac local up|down|ps|logs`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::Ctx;
use crate::cli::{LocalCommand, LocalUpArgs};
use crate::config::{self, Environment};
use crate::error::{Error, Result, exit};
use crate::local::state::{DataDir, Running};
use crate::local::{demo, embedded};

pub fn run(cmd: &LocalCommand, ctx: &Ctx) -> Result<i32> {
    let root = ctx.root().ok();
    let data = DataDir::locate(root.as_deref());
    match cmd {
        LocalCommand::Up(args) => up(args, root.as_deref(), &data, ctx),
        LocalCommand::Ps => ps(&data, ctx),
        LocalCommand::Down { volumes } => down(&data, *volumes, ctx),
        LocalCommand::Logs { follow } => logs(&data, *follow),
    }
}

/// The checkout's local.yaml, or the built-in one on a machine without a checkout.
fn environment(root: Option<&Path>, ctx: &Ctx) -> Result<Environment> {
    match root {
        Some(r) => config::load(r, "local"),
        None => {
            ctx.out
                .note("no learntrac checkout here: using the built-in local environment");
            config::parse(
                Path::new("(built-in)/local.yaml"),
                crate::local::BUILTIN_LOCAL_ENVIRONMENT,
                "local",
            )
            .map_err(Error::Config)
        }
    }
}

fn up(args: &LocalUpArgs, root: Option<&Path>, data: &DataDir, ctx: &Ctx) -> Result<i32> {
    let env = environment(root, ctx)?;
    if let Some(r) = data.running() {
        return Err(Error::Preflight {
            what: format!(
                "a local stack is already running (pid {}, http://127.0.0.1:{})",
                r.pid, r.router_port
            ),
            hint: "use it, or stop it with `learntrac local down`".into(),
        });
    }
    let runtime =
        tokio::runtime::Runtime::new().map_err(|e| Error::io("start the async runtime", e))?;
    runtime.block_on(async {
        if !args.embedded {
            let docker_up = crate::docker::connect().await.is_ok();
            if docker_up {
                ctx.out.note(
                    "a Docker Engine is reachable, but the Docker runtime (Trac, PostgreSQL and Redis containers) \
                     is not built yet; running the embedded runtime",
                );
            }
        }
        up_embedded(&env, data, args, ctx).await
    })
}

async fn up_embedded(
    env: &Environment,
    data: &DataDir,
    args: &LocalUpArgs,
    ctx: &Ctx,
) -> Result<i32> {
    data.create()?;
    init_logging(data)?;
    let say = |m: &str| {
        if !ctx.out.quiet() {
            eprintln!("{m}");
        }
    };
    if embedded::ensure_trac_db(data).await? {
        say(&format!(
            "created a Trac database (Trac's schema, version 45) at {}",
            data.trac_db().display()
        ));
    }
    let secret = data.token_secret()?;
    let service = embedded::service(data, env, &secret).await?;
    if args.seed_demo {
        if demo::seed(data, &service, &secret).await? {
            say(
                "seeded demo data: 7 concepts in 2 milestones, students alice and bob, teacher carol, practice history",
            );
        } else {
            say("demo data: the database already has tickets; nothing added");
        }
    }
    let port = args.port.unwrap_or(env.local.router_port);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| Error::Preflight {
            what: format!("cannot listen on 127.0.0.1:{port}: {e}"),
            hint: "stop what uses the port, or pass --port".into(),
        })?;
    let stack = Arc::new(embedded::Stack {
        service,
        rules: env.routing.clone(),
    });
    let app = embedded::router_app(stack);
    let server = tokio::spawn(learntrac_service::serve(
        listener,
        app,
        learntrac_service::shutdown_signal(),
    ));
    embedded::await_healthy(port, Duration::from_secs(20)).await?;
    let started_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    data.mark_running(&Running {
        pid: std::process::id(),
        runtime: "embedded".into(),
        router_port: port,
        started_at,
    })?;

    let base = format!("http://127.0.0.1:{port}");
    let mut lines = vec![
        format!("LearnTrac is up (embedded runtime) at {base}"),
        format!("  API health   {base}/api/LearnTrac/health"),
        format!("  OpenAPI      {base}/api/LearnTrac/openapi.json"),
        format!("  data         {}", data.0.display()),
        "  not running  Trac UI, PostgreSQL, Redis: the embedded runtime uses SQLite with Trac's schema".into(),
        "               and an in-process cache; Trac's pages answer 503 until the Docker runtime exists".into(),
    ];
    if args.seed_demo {
        let token =
            learntrac_service::auth::issue_token(&secret, "alice", 86_400).map_err(|e| {
                Error::Local {
                    component: "demo".into(),
                    message: e.to_string(),
                }
            })?;
        lines.push(format!("  try          curl -H 'Authorization: Bearer {token}' {base}/api/LearnTrac/students/alice/progress"));
    }
    lines.push(
        "stop with Ctrl-C or `learntrac local down` (data is kept; `down --volumes` removes it)"
            .into(),
    );
    ctx.out.result(
        &serde_json::json!({"runtime": "embedded", "url": base, "data": data.0}),
        || lines.join("\n"),
    );

    let result = server.await;
    data.mark_stopped();
    match result {
        Ok(Ok(())) => Ok(exit::OK),
        Ok(Err(e)) => Err(Error::io("serve the local router", e)),
        Err(e) => Err(Error::Local {
            component: "router".into(),
            message: e.to_string(),
        }),
    }
}

/// Service logs go to a file in the data folder, for `local logs`.
fn init_logging(data: &DataDir) -> Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data.log())
        .map_err(|e| Error::io(format!("open {}", data.log().display()), e))?;
    let _ = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init();
    Ok(())
}

#[derive(Serialize)]
struct Component {
    name: &'static str,
    state: String,
    health: String,
    ports: String,
}

fn ps(data: &DataDir, ctx: &Ctx) -> Result<i32> {
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
    let comps = vec![
        Component {
            name: "router",
            state: up("running"),
            health: up(if healthy { "healthy" } else { "unhealthy" }),
            ports: port.clone(),
        },
        Component {
            name: "learntrac",
            state: up("running (in-process)"),
            health: up(if healthy { "healthy" } else { "unhealthy" }),
            ports: port,
        },
        Component {
            name: "trac",
            state: "not running (needs the Docker runtime)".into(),
            health: "-".into(),
            ports: String::new(),
        },
        Component {
            name: "postgres",
            state: "not used (SQLite)".into(),
            health: "-".into(),
            ports: String::new(),
        },
        Component {
            name: "redis",
            state: "not used (in-process cache)".into(),
            health: "-".into(),
            ports: String::new(),
        },
    ];
    ctx.out.result(&serde_json::json!({"runtime": running.as_ref().map(|r| r.runtime.clone()), "components": comps}), || {
        let mut s = format!("{:<10} {:<40} {:<10} {}\n", "COMPONENT", "STATE", "HEALTH", "PORTS");
        for c in &comps {
            s.push_str(&format!("{:<10} {:<40} {:<10} {}\n", c.name, c.state, c.health, c.ports));
        }
        s
    });
    Ok(exit::OK)
}

fn down(data: &DataDir, volumes: bool, ctx: &Ctx) -> Result<i32> {
    if let Some(r) = data.running() {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &r.pid.to_string()])
            .status();
        for _ in 0..200 {
            if !r.alive() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        data.mark_stopped();
        ctx.out
            .note(&format!("stopped the local stack (pid {})", r.pid));
    } else {
        ctx.out.note("no local stack is running");
    }
    if volumes {
        if data.0.exists() {
            std::fs::remove_dir_all(&data.0)
                .map_err(|e| Error::io(format!("remove {}", data.0.display()), e))?;
        }
        ctx.out
            .note(&format!("removed the data in {}", data.0.display()));
    } else if data.0.exists() {
        ctx.out.note(&format!(
            "data kept in {} (remove it with `local down --volumes`)",
            data.0.display()
        ));
    }
    Ok(exit::OK)
}

fn logs(data: &DataDir, follow: bool) -> Result<i32> {
    use std::io::{Read, Seek, SeekFrom};
    let path = data.log();
    let mut file =
        std::fs::File::open(&path).map_err(|e| Error::io(format!("open {}", path.display()), e))?;
    let mut buf = String::new();
    file.read_to_string(&mut buf)
        .map_err(|e| Error::io("read the log", e))?;
    print!("{buf}");
    if !follow {
        return Ok(exit::OK);
    }
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let pos = file
            .stream_position()
            .map_err(|e| Error::io("read the log", e))?;
        let mut more = String::new();
        file.read_to_string(&mut more)
            .map_err(|e| Error::io("read the log", e))?;
        print!("{more}");
        if more.is_empty() {
            file.seek(SeekFrom::Start(pos))
                .map_err(|e| Error::io("read the log", e))?;
        }
    }
}
