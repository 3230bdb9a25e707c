//! `learntrac local up`: the stack in containers (Docker runtime) or in this process (embedded
//! runtime), behind the router, until Ctrl-C or `local down`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::Ctx;
use crate::cli::{LocalUpArgs, ServiceMode};
use crate::config::ServiceName;
use crate::config::{self, Environment};
use crate::error::{Error, Result, exit};
use crate::local::stack as local_stack;
use crate::local::state::{DataDir, Running, TracRecord};
use crate::local::stop::Stop;
use crate::local::trac_process::{self, TracProcess};
use crate::local::{accounts, containers, demo, embedded, proxy};

/// The checkout's local.yaml, or the built-in one on a machine without a checkout.
pub fn environment(root: Option<&Path>, ctx: &Ctx) -> Result<Environment> {
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

pub fn up(args: &LocalUpArgs, root: Option<&Path>, data: &DataDir, ctx: &Ctx) -> Result<i32> {
    let env = environment(root, ctx)?;
    // What can fail before anything is written: a busy port (probed, then let go; the
    // router binds it once the stack is ready).
    let port = args.port.unwrap_or(env.local.router_port);
    std::net::TcpListener::bind(("127.0.0.1", port)).map_err(|e| busy_port(port, &e))?;
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
    if args.seed_demo {
        let (people, made) = accounts::ensure_demo(data)?;
        if made {
            let list: Vec<String> = people
                .iter()
                .map(|a| format!("  {:<8} {:<14} {}", a.user, a.role, a.password))
                .collect();
            ctx.out.say(&format!(
                "demo accounts for Trac's Login (passwords shown once; kept in {}, mode 600):\n{}",
                data.0.join(accounts::DEMO_ACCOUNTS).display(),
                list.join("\n")
            ));
        }
    }
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
        &local_stack::trac(
            env,
            &image,
            &stack,
            &password,
            &accounts::htdigest_lines(data)?,
        ),
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
    let features = in_process.features.clone();
    if args.seed_demo {
        seed_demo(&database_url, &in_process.router, &secret, &ctx.out).await?;
    }
    let learntrac_name = format!("{stack}-learntrac");
    let (served, service_note) = match args.service {
        ServiceMode::InProcess => {
            // A container left from `--service container` would only confuse `ps`.
            containers::remove_if_present(docker, &learntrac_name).await?;
            (
                Served::InProcess(in_process.router),
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
    let mut notes = features;
    notes.extend([
        service_note,
        format!("  trac         {trac_url} (container {})", trac.container),
        format!("  postgres     127.0.0.1:{} (container {})", pg.host_port, pg.container),
        format!("  redis        127.0.0.1:{} (container {})", redis.host_port, redis.container),
        "  containers keep running after Ctrl-C; `learntrac local down` removes them (volumes kept unless --volumes)".into(),
    ]);
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
    // Trac first: a new environment loads Trac's default wiki pages, which the demo's
    // front page follows.
    let trac = match embedded_trac(data, ctx).await {
        Ok(t) => Trac::Process(t),
        Err(e) => {
            ctx.out
                .note(&format!("{e}\nserving the API without Trac's pages"));
            Trac::Absent(e.to_string())
        }
    };
    if args.seed_demo {
        let url = format!("sqlite://{}", data.trac_db().display());
        seed_demo(&url, &service.router, &secret, &ctx.out).await?;
    }
    let mut notes = service.features.clone();
    notes.push(format!("  data         {}", data.0.display()));
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
        Served::InProcess(service.router),
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
    let htdigest = accounts::htdigest(data)?;
    trac_process::start(
        &bin,
        &env,
        &htdigest,
        &data.trac_log(),
        Duration::from_secs(60),
    )
    .await
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
        .map_err(|e| busy_port(port, &e))?;
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
        format!("  student page {base}/learn/"),
    ];
    lines.extend(notes);
    if args.seed_demo {
        lines.push(format!(
            "  sign in      {base}/login as carol (teacher), alice or bob (students), admin (Trac admin); passwords in {}",
            data.0.join(accounts::DEMO_ACCOUNTS).display()
        ));
        let token = learntrac_service::auth::issue_token(secret, "alice", 86_400).map_err(|e| {
            Error::Local {
                component: "demo".into(),
                message: e.to_string(),
            }
        })?;
        lines.push(format!(
            "  learn        {base}/learn/#token={token}  (alice's page without signing in; the link works for 24 hours)"
        ));
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

fn busy_port(port: u16, e: &std::io::Error) -> Error {
    Error::Preflight {
        what: format!("cannot listen on 127.0.0.1:{port}: {e}"),
        hint: "stop what uses the port, or pass --port".into(),
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
