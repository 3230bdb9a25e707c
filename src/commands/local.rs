//! `learntrac local up|down|ps|logs`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::Ctx;
use crate::cli::{LocalCommand, LocalComponent, LocalUpArgs, ServiceMode};
use crate::config::ServiceName;
use crate::config::{self, Environment};
use crate::error::{Error, Result, exit};
use crate::local::stack as local_stack;
use crate::local::state::{DataDir, Running, TracRecord};
use crate::local::stop::Stop;
use crate::local::trac_process::{self, TracProcess};
use crate::local::{containers, demo, embedded, proxy};

pub fn run(cmd: &LocalCommand, ctx: &Ctx) -> Result<i32> {
    let root = ctx.root().ok();
    let data = DataDir::locate(root.as_deref());
    match cmd {
        LocalCommand::Up(args) => up(args, root.as_deref(), &data, ctx),
        LocalCommand::Ps => ps(&data, ctx),
        LocalCommand::Down { volumes } => down(&data, *volumes, ctx),
        LocalCommand::Logs { component, follow } => logs(ctx, &data, *component, *follow),
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
    // Both runtimes keep their data and the service's log in the data folder, which one
    // stack at a time holds (the lock goes when this process does, however it ends).
    data.create()?;
    let _lock = data.lock()?;
    init_logging(data)?;
    let runtime =
        tokio::runtime::Runtime::new().map_err(|e| Error::io("start the async runtime", e))?;
    runtime.block_on(async {
        let stop = Stop::install()?;
        tokio::select! {
            r = up_in(args, root, &env, data, ctx, &stop) => r,
            why = stop.while_starting() => Err(Error::Interrupted(format!(
                "{why} while starting: nothing is served; containers already started keep running (`learntrac local down` removes them)"
            ))),
        }
    })
}

async fn up_in(
    args: &LocalUpArgs,
    root: Option<&Path>,
    env: &Environment,
    data: &DataDir,
    ctx: &Ctx,
    stop: &Stop,
) -> Result<i32> {
    if !args.embedded
        && let Ok(docker) = crate::docker::connect().await
    {
        match root {
            Some(root) => match images_available(&docker, env).await {
                Ok(()) => return up_docker(&docker, root, env, data, args, ctx, stop).await,
                Err(why) => ctx.out.note(&format!(
                    "the Docker runtime cannot run here: {why}; running the embedded runtime \
                     (pull or build that image, or point local.* / images.trac_base at one you have)"
                )),
            },
            None => ctx.out.note(
                "the Docker runtime builds Trac's image from a checkout's trac-legacy/; without one, the embedded runtime runs",
            ),
        }
    }
    up_embedded(env, data, args, ctx, stop).await
}

/// The images the Docker runtime starts from, pulled when missing: an engine that cannot
/// have them (offline, no registry access) means the embedded runtime instead.
async fn images_available(docker: &bollard::Docker, env: &Environment) -> Result<()> {
    for (component, image) in [
        ("postgres", &env.local.postgres_image),
        ("redis", &env.local.redis_image),
        ("trac", &env.images.trac_base),
    ] {
        containers::ensure_image(docker, component, image).await?;
    }
    Ok(())
}

/// PostgreSQL, Redis and Trac in containers; the service in-process on them; the router.
async fn up_docker(
    docker: &bollard::Docker,
    root: &Path,
    env: &Environment,
    data: &DataDir,
    args: &LocalUpArgs,
    ctx: &Ctx,
    stop: &Stop,
) -> Result<i32> {
    let stack = env.name_prefix();
    let password = data.secret("postgres-password")?;
    let timeout = Duration::from_secs(env.local.health_timeout);
    containers::ensure_network(docker, &stack).await?;
    let (pg, redis) = (
        local_stack::postgres(env, &password),
        local_stack::redis(env),
    );
    let (pg, redis) = tokio::join!(
        start(docker, &stack, &pg, timeout, &ctx.out),
        start(docker, &stack, &redis, timeout, &ctx.out)
    );
    let (pg, redis) = (pg?, redis?);
    // Trac's image from trac-legacy/ (cached when unchanged), then its container, which
    // creates Trac's schema in the database on first start.
    let progress = crate::ui::progress::Progress::new(ctx.out.quiet());
    let files = crate::render::render(env, args.templates.as_deref())?;
    let image = build_image(root, env, &files, ServiceName::Trac, &progress).await?;
    let trac = start(
        docker,
        &stack,
        &local_stack::trac(env, &image, &stack, &password),
        timeout,
        &ctx.out,
    )
    .await?;

    let database_url = format!(
        "postgres://{}:{password}@127.0.0.1:{}/{}",
        local_stack::DATABASE_USER,
        pg.host_port,
        local_stack::DATABASE
    );
    let redis_url = format!("redis://127.0.0.1:{}", redis.host_port);
    let secret = data.token_secret()?;
    let in_process = embedded::service_on(env, &database_url, Some(&redis_url), &secret).await?;
    if args.seed_demo {
        seed_demo(&database_url, &in_process, &secret, &ctx.out).await?;
    }
    let learntrac_name = format!("{stack}-learntrac");
    let (served, service_note) = match args.service {
        ServiceMode::InProcess => {
            // A container left from `--service container` would only confuse `ps`.
            containers::remove_if_present(docker, &learntrac_name).await?;
            (
                Served::InProcess(in_process),
                "  learntrac    in-process (--service container runs its image)".to_string(),
            )
        }
        ServiceMode::Container => {
            drop(in_process);
            let image = build_image(root, env, &files, ServiceName::Learntrac, &progress).await?;
            let svc = start(
                docker,
                &stack,
                &local_stack::learntrac(env, &image, &stack, &password, &secret),
                timeout,
                &ctx.out,
            )
            .await?;
            (
                Served::Container(format!("http://127.0.0.1:{}", svc.host_port)),
                format!("  learntrac    container {}", svc.container),
            )
        }
    };
    let trac_url = format!("http://127.0.0.1:{}", trac.host_port);
    let notes = vec![
        service_note,
        format!("  trac         {trac_url} (container {})", trac.container),
        format!("  postgres     127.0.0.1:{} (container {})", pg.host_port, pg.container),
        format!("  redis        127.0.0.1:{} (container {})", redis.host_port, redis.container),
        "  containers keep running after Ctrl-C; `learntrac local down` removes them (volumes kept unless --volumes)".into(),
    ];
    serve(
        env,
        data,
        args,
        ctx,
        served,
        Trac::Container(trac_url),
        "docker",
        notes,
        &secret,
        stop,
    )
    .await
}

/// One service's image, built like `learntrac build` does (cached when unchanged).
async fn build_image(
    root: &Path,
    env: &Environment,
    files: &crate::render::Files,
    service: ServiceName,
    progress: &crate::ui::progress::Progress,
) -> Result<String> {
    let built =
        crate::images::images(root, env, files, Some(service), false, false, progress).await?;
    built
        .first()
        .map(|r| r.local.clone())
        .ok_or_else(|| Error::Local {
            component: service.to_string(),
            message: "no image was built".into(),
        })
}

/// A component's container, created or kept, then awaited healthy.
async fn start(
    docker: &bollard::Docker,
    stack: &str,
    component: &containers::Component,
    timeout: Duration,
    out: &crate::ui::Output,
) -> Result<containers::Running> {
    let running = containers::ensure(docker, stack, component).await?;
    containers::wait_healthy(docker, &component.name, &running.container, timeout).await?;
    out.say(
        &format!(
            "{:<9} {:?}, healthy on 127.0.0.1:{}",
            running.component, running.action, running.host_port
        )
        .to_lowercase(),
    );
    Ok(running)
}

async fn seed_demo(
    database_url: &str,
    service: &axum::Router,
    secret: &str,
    out: &crate::ui::Output,
) -> Result<()> {
    if demo::seed(database_url, service, secret).await? {
        out.say(
            "seeded demo data: 7 concepts in 2 milestones, students alice and bob, teacher carol, practice history",
        );
    } else {
        out.say("demo data: the database already has tickets; nothing added");
    }
    Ok(())
}

async fn up_embedded(
    env: &Environment,
    data: &DataDir,
    args: &LocalUpArgs,
    ctx: &Ctx,
    stop: &Stop,
) -> Result<i32> {
    if embedded::ensure_trac_db(data).await? {
        ctx.out.say(&format!(
            "created a Trac database (Trac's schema, version 45) at {}",
            data.trac_db().display()
        ));
    }
    let secret = data.token_secret()?;
    let service = embedded::service(data, env, &secret).await?;
    if args.seed_demo {
        let url = format!("sqlite://{}", data.trac_db().display());
        seed_demo(&url, &service, &secret, &ctx.out).await?;
    }
    let trac = match embedded_trac(data, ctx).await {
        Ok(t) => Trac::Process(t),
        Err(e) => {
            ctx.out
                .note(&format!("{e}\nserving the API without Trac's pages"));
            Trac::Absent(e.to_string())
        }
    };
    let mut notes = vec![format!("  data         {}", data.0.display())];
    if let Trac::Process(t) = &trac {
        notes.push(format!(
            "  trac         {} (Trac 1.6, tracd pid {}, log {})",
            t.url(),
            t.pid().unwrap_or_default(),
            t.log.display()
        ));
    }
    notes.push(
        "  not running  PostgreSQL, Redis: the embedded runtime uses SQLite with Trac's schema and an in-process cache"
            .into(),
    );
    serve(
        env,
        data,
        args,
        ctx,
        Served::InProcess(service),
        trac,
        "embedded",
        notes,
        &secret,
        stop,
    )
    .await
}

/// Trac 1.6 in the managed virtual environment, on the embedded database.
async fn embedded_trac(data: &DataDir, ctx: &Ctx) -> Result<TracProcess> {
    let say = |m: &str| ctx.out.say(m);
    let bin = trac_process::ensure_venv(&say).await?;
    let env = trac_process::ensure_env(data, &bin).await?;
    trac_process::start(&bin, &env, &data.trac_log(), Duration::from_secs(60)).await
}

/// Where the router finds Trac.
enum Trac {
    /// `http://127.0.0.1:PORT` of its container (Docker runtime).
    Container(String),
    /// `tracd` beside the embedded runtime.
    Process(TracProcess),
    /// Not running, and why.
    Absent(String),
}

/// Where the router finds the LearnTrac service.
enum Served {
    InProcess(axum::Router),
    /// `http://127.0.0.1:PORT` of its container.
    Container(String),
}

/// The local router in front of the in-process service (and Trac's container), in the
/// foreground until Ctrl-C or `local down`.
#[allow(clippy::too_many_arguments)]
async fn serve(
    env: &Environment,
    data: &DataDir,
    args: &LocalUpArgs,
    ctx: &Ctx,
    service: Served,
    trac: Trac,
    runtime: &str,
    notes: Vec<String>,
    secret: &str,
    stop: &Stop,
) -> Result<i32> {
    let port = args.port.unwrap_or(env.local.router_port);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| Error::Preflight {
            what: format!("cannot listen on 127.0.0.1:{port}: {e}"),
            hint: "stop what uses the port, or pass --port".into(),
        })?;
    let (service, learntrac) = match service {
        Served::InProcess(router) => (Some(router), None),
        Served::Container(url) => (None, Some(url)),
    };
    let (trac_url, trac_absent, mut tracd) = match trac {
        Trac::Container(url) => (Some(url), None, None),
        Trac::Process(t) => (Some(t.url()), None, Some(t)),
        Trac::Absent(why) => (None, Some(why), None),
    };
    let idle = Duration::from_secs(u64::from(env.network.idle_timeout));
    let stack = Arc::new(proxy::Stack {
        service,
        learntrac,
        rules: env.routing.clone(),
        trac: trac_url,
        trac_absent,
        http: proxy::Stack::http_client(idle).map_err(|e| Error::Local {
            component: "router".into(),
            message: format!("cannot make an HTTP client: {e}"),
        })?,
        port,
        idle,
    });
    let app = proxy::app(stack);
    let shutdown = {
        let stop = stop.clone();
        async move {
            stop.requested().await;
        }
    };
    let server = tokio::spawn(proxy::serve(listener, app, idle, shutdown));
    embedded::await_healthy(port, Duration::from_secs(20)).await?;
    let started_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    data.mark_running(&Running {
        pid: std::process::id(),
        pid_started: crate::local::state::process_started(std::process::id()),
        runtime: runtime.into(),
        router_port: port,
        started_at,
        trac: tracd.as_ref().and_then(|t| {
            let pid = t.pid()?;
            Some(TracRecord {
                pid,
                port: t.port,
                pid_started: crate::local::state::process_started(pid),
            })
        }),
    })?;

    let base = format!("http://127.0.0.1:{port}");
    let mut lines = vec![
        format!("LearnTrac is up ({runtime} runtime) at {base}"),
        format!("  API health   {base}/api/LearnTrac/health"),
        format!("  OpenAPI      {base}/api/LearnTrac/openapi.json"),
    ];
    lines.extend(notes);
    if args.seed_demo {
        let token = learntrac_service::auth::issue_token(secret, "alice", 86_400).map_err(|e| {
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
        &serde_json::json!({"runtime": runtime, "url": base, "data": data.0}),
        || lines.join("\n"),
    );
    stop.serving();

    let mut server = server;
    let result = loop {
        tokio::select! {
            r = &mut server => break r,
            // Trac crashing does not stop the API: say so, with Trac's last words.
            (status, log) = trac_exit(&mut tracd) => {
                ctx.out.note(&format!(
                    "Trac stopped ({status}); its pages now answer 502. Last lines of {}:\n{}",
                    log.display(),
                    trac_process::tail(&log)
                ));
                tracd = None;
            }
        }
    };
    drop(tracd);
    data.mark_stopped();
    ctx.out.note(&format!(
        "stopped ({}); data kept in {}",
        stop.reason().unwrap_or("the router ended"),
        data.0.display()
    ));
    match result {
        Ok(Ok(())) => Ok(exit::OK),
        Ok(Err(e)) => Err(Error::io("serve the local router", e)),
        Err(e) => Err(Error::Local {
            component: "router".into(),
            message: e.to_string(),
        }),
    }
}

/// Completes when the embedded `tracd` exits; never, when there is none.
async fn trac_exit(tracd: &mut Option<TracProcess>) -> (String, std::path::PathBuf) {
    match tracd {
        Some(t) => {
            let status = t
                .child
                .wait()
                .await
                .map_or_else(|e| e.to_string(), |s| s.to_string());
            (status, t.log.clone())
        }
        None => std::future::pending().await,
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
    name: String,
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
    ctx.out.result(&serde_json::json!({"runtime": running.as_ref().map(|r| r.runtime.clone()), "components": comps}), || {
        let mut s = format!("{:<10} {:<40} {:<10} {}\n", "COMPONENT", "STATE", "HEALTH", "PORTS");
        for c in &comps {
            s.push_str(&format!("{:<10} {:<40} {:<10} {}\n", c.name, c.state, c.health, c.ports));
        }
        s
    });
    Ok(exit::OK)
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
fn env_prefix(ctx: &Ctx) -> Option<String> {
    environment(ctx.root().ok().as_deref(), ctx)
        .ok()
        .map(|e| e.name_prefix())
}

/// The stack's containers, when a Docker Engine answers.
fn docker_containers(stack: Option<&str>) -> Vec<containers::Listed> {
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

fn down(data: &DataDir, volumes: bool, ctx: &Ctx) -> Result<i32> {
    // A `tracd` left behind by an `up` that was killed outright.
    let orphan = data.recorded().and_then(|r| r.trac);
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
    if let Some(t) = orphan.filter(TracRecord::alive) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &t.pid.to_string()])
            .status();
        data.mark_stopped();
        ctx.out.note(&format!("stopped Trac (tracd pid {})", t.pid));
    }
    if let Some(stack) = env_prefix(ctx) {
        let runtime =
            tokio::runtime::Runtime::new().map_err(|e| Error::io("start the async runtime", e))?;
        let removed = runtime.block_on(async {
            match crate::docker::connect().await {
                Ok(docker) => containers::remove_stack(&docker, &stack, volumes).await,
                Err(_) => Ok(Vec::new()),
            }
        })?;
        if !removed.is_empty() {
            ctx.out.note(&format!("removed {}", removed.join(", ")));
        }
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

/// A component's log: its container's where it runs in one, else the file the embedded
/// runtime writes (the in-process service's, or `tracd`'s).
fn logs(ctx: &Ctx, data: &DataDir, component: Option<LocalComponent>, follow: bool) -> Result<i32> {
    let name = component.map_or("learntrac", LocalComponent::as_str);
    if docker_containers(env_prefix(ctx).as_deref())
        .iter()
        .any(|c| c.component == name)
    {
        return container_logs(ctx, name, follow);
    }
    match component {
        None | Some(LocalComponent::Learntrac) => file_log(&data.log(), follow),
        Some(LocalComponent::Trac) if data.trac_log().exists() => {
            file_log(&data.trac_log(), follow)
        }
        Some(c) => Err(Error::Local {
            component: c.as_str().into(),
            message: match c {
                LocalComponent::Trac => {
                    "no log: Trac has not run here (`learntrac local up` starts it)".into()
                }
                _ => format!(
                    "no log: {} runs only in the Docker runtime (the embedded runtime uses SQLite and an in-process cache)",
                    c.as_str()
                ),
            },
        }),
    }
}

/// A container's log through the Engine API (`docker logs [-f]`).
fn container_logs(ctx: &Ctx, component: &str, follow: bool) -> Result<i32> {
    use futures_util::StreamExt;
    let stack = env_prefix(ctx).unwrap_or_else(|| "learntrac-local".into());
    let runtime =
        tokio::runtime::Runtime::new().map_err(|e| Error::io("start the async runtime", e))?;
    runtime.block_on(async {
        let docker = crate::docker::connect().await?;
        let name = format!("{stack}-{component}");
        let options = bollard::query_parameters::LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .follow(follow)
            .build();
        let mut stream = docker.logs(&name, Some(options));
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(c) => crate::ui::print(&c.to_string()),
                Err(e) => {
                    return Err(Error::Local {
                        component: component.to_string(),
                        message: format!(
                            "no log for container {name}: {e} (components: postgres, redis, trac, learntrac)"
                        ),
                    });
                }
            }
        }
        Ok(exit::OK)
    })
}

fn file_log(path: &Path, follow: bool) -> Result<i32> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file =
        std::fs::File::open(path).map_err(|e| Error::io(format!("open {}", path.display()), e))?;
    let mut buf = String::new();
    file.read_to_string(&mut buf)
        .map_err(|e| Error::io("read the log", e))?;
    crate::ui::print(&buf);
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
        crate::ui::print(&more);
        if more.is_empty() {
            file.seek(SeekFrom::Start(pos))
                .map_err(|e| Error::io("read the log", e))?;
        }
    }
}
