//! Test fixtures on real peers: a fresh Trac environment (created by real `trac-admin`) in
//! a fresh PostgreSQL database or SQLite file, seeded through Trac's own model classes,
//! and the service on port 0 in-process.
#![allow(dead_code)]

pub mod fake_audio;
pub mod fake_aws_speech;
pub mod fake_model;
pub mod speech;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use learntrac_service::{Config, Limits, build_state, router, serve};
use serde_json::Value;
use tokio::sync::oneshot;

pub const TOKEN_SECRET: &str = "test-secret-of-at-least-32-characters!!";

fn peer(var: &str, what: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{what} is required: set {var} (scripts/test starts it; or run under scripts/with-peers)")
    })
}

pub fn pg_admin_url() -> String {
    peer("LEARNTRAC_TEST_PG", "a PostgreSQL server")
}

pub fn redis_url() -> String {
    peer("LEARNTRAC_TEST_REDIS", "a Redis server")
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
    )
}

/// Replaces the user and password of a postgres:// URL.
pub fn with_user(url: &str, user: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}://{user}:{password}@{host}")
}

/// Replaces the database of a postgres:// URL, keeping its query (the TLS settings).
pub fn with_database(url: &str, db: &str) -> String {
    let (path, query) = url
        .split_once('?')
        .map_or((url, None), |(p, q)| (p, Some(q)));
    let base = path.rsplit_once('/').map_or(path, |(b, _)| b);
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

/// A Trac environment on a fresh database, created by `trac-admin initenv` with the
/// production trac.ini settings (trac-legacy/config/shared.ini).
pub struct TracEnv {
    pub dir: tempfile::TempDir,
    /// What the service connects to.
    pub database_url: String,
}

impl TracEnv {
    pub async fn postgres() -> Self {
        let admin = pg_admin_url();
        let name = unique("trac");
        let mut conn = sqlx_pg(&admin).await;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let url = with_database(&admin, &name);
        Self::init(&url, url.clone())
    }

    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let env = dir.path().join("env");
        initenv(&env, "sqlite:db/trac.db");
        let database_url = format!("sqlite://{}", env.join("db/trac.db").display());
        TracEnv { dir, database_url }
    }

    /// Trac's schema made by Trac connecting with `trac_db`; the service connects with
    /// `database_url` (another role of the same database, say).
    pub fn init(trac_db: &str, database_url: String) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        initenv(&dir.path().join("env"), trac_db);
        TracEnv { dir, database_url }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("env")
    }

    /// Seeds through Trac's model (tickets, milestones, permissions, login cookies);
    /// returns the new ticket ids.
    pub fn seed(&self, spec: Value) -> Vec<i64> {
        let out = helper(&self.path(), &["seed"], Some(&spec.to_string()));
        out["tickets"]
            .as_array()
            .expect("ticket ids")
            .iter()
            .filter_map(Value::as_i64)
            .collect()
    }

    /// A ticket as Trac's own code reports it: values, custom fields, change log.
    pub fn read_ticket(&self, id: i64) -> Value {
        helper(&self.path(), &["read", &id.to_string()], None)
    }
}

fn initenv(env: &Path, db: &str) {
    let trac_admin = peer("TRAC_ADMIN", "Trac 1.6's trac-admin");
    let shared = repo().join("trac-legacy/config/shared.ini");
    let out = Command::new(trac_admin)
        .arg(env)
        .args(["initenv", "learntrac", db])
        .arg(format!("--inherit={}", shared.display()))
        .output()
        .expect("run trac-admin");
    assert!(
        out.status.success(),
        "trac-admin initenv failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn helper(env: &Path, args: &[&str], stdin: Option<&str>) -> Value {
    use std::io::Write;
    let python = peer("TRAC_PYTHON", "Trac 1.6's Python");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/trac_helper.py");
    let mut child = Command::new(python)
        .arg(script)
        .arg(args[0])
        .arg(env)
        .args(&args[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run trac_helper.py");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write spec");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("trac_helper.py");
    assert!(
        out.status.success(),
        "trac_helper.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("helper JSON")
}

pub async fn sqlx_pg(url: &str) -> sqlx::AnyConnection {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    sqlx::AnyConnection::connect(url)
        .await
        .expect("connect to PostgreSQL")
}

/// The service, in-process on 127.0.0.1:0.
pub struct App {
    pub base: String,
    pub state: learntrac_service::AppState,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    pub server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

pub struct AppOptions {
    pub redis: Option<String>,
    pub acquire_timeout_ms: u64,
    pub request_timeout_s: u64,
    pub max_connections: Option<u32>,
    pub session_cache_ms: u64,
    /// More variables, e.g. CHAT_*.
    pub extra: Vec<(&'static str, String)>,
}

impl Default for AppOptions {
    fn default() -> Self {
        AppOptions {
            redis: Some(redis_url()),
            acquire_timeout_ms: 1000,
            request_timeout_s: 10,
            max_connections: None,
            session_cache_ms: 5000,
            extra: Vec::new(),
        }
    }
}

impl App {
    pub async fn spawn(database_url: &str) -> Self {
        Self::spawn_with(database_url, AppOptions::default()).await
    }

    pub async fn spawn_with(database_url: &str, o: AppOptions) -> Self {
        let mut vars = vec![
            ("DATABASE_URL", database_url.to_string()),
            ("LEARNTRAC_TOKEN_SECRET", TOKEN_SECRET.to_string()),
            (
                "DATABASE_ACQUIRE_TIMEOUT_MS",
                o.acquire_timeout_ms.to_string(),
            ),
            ("REQUEST_TIMEOUT_SECONDS", o.request_timeout_s.to_string()),
            ("CACHE_TTL_SECONDS", "60".to_string()),
            ("SESSION_CACHE_MS", o.session_cache_ms.to_string()),
            // Tests share one Redis; concept ids repeat across their databases.
            ("CACHE_KEY_PREFIX", unique("test")),
        ];
        if let Some(r) = o.redis {
            vars.push(("REDIS_URL", r));
        }
        vars.extend(o.extra);
        if let Some(n) = o.max_connections {
            vars.push(("DATABASE_MAX_CONNECTIONS", n.to_string()));
        }
        let config =
            Config::from_vars(&vars.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
                .expect("config");
        let state = build_state(&config).await.expect("build state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(serve(
            listener,
            router(state.clone(), Limits::from(&config)),
            async {
                let _ = rx.await;
            },
        ));
        App {
            base,
            state,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("client"),
            shutdown: Some(tx),
            server: Some(server),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn get(&self, path: &str, who: Who) -> reqwest::RequestBuilder {
        who.apply(self.client.get(self.url(path)))
    }

    pub fn post(&self, path: &str, who: Who) -> reqwest::RequestBuilder {
        who.apply(self.client.post(self.url(path)))
    }

    pub fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How a request authenticates.
#[derive(Clone, Copy)]
pub enum Who<'a> {
    Anonymous,
    Bearer(&'a str),
    Cookie(&'a str),
}

impl Who<'_> {
    fn apply(self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Who::Anonymous => rb,
            Who::Bearer(user) => {
                let token =
                    learntrac_service::auth::issue_token(TOKEN_SECRET, user, 3600).expect("token");
                rb.bearer_auth(token)
            }
            Who::Cookie(c) => rb.header("Cookie", format!("trac_auth={c}")),
        }
    }
}

/// Sends and returns status and JSON body.
pub async fn call(rb: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = rb.send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The standard seed: two students, an admin (through a group), a teacher, milestones,
/// concepts with prerequisites (and a cycle), and login cookies.
pub fn standard_seed(env: &TracEnv) -> Vec<i64> {
    env.seed(serde_json::json!({
        "milestones": ["algebra", "calculus"],
        "tickets": [
            {"summary": "Variables", "owner": "alice", "milestone": "algebra"},
            {"summary": "Equations", "owner": "alice", "milestone": "algebra",
             "custom": {"prerequisite_concepts": "[1]", "mastery_threshold": "0.7", "learning_difficulty": "3.5"}},
            {"summary": "Quadratics", "owner": "alice", "milestone": "algebra",
             "custom": {"prerequisite_concepts": "[2, 99]"}},
            {"summary": "Limits", "owner": "bob", "milestone": "calculus",
             "custom": {"prerequisite_concepts": "[5]"}},
            {"summary": "Continuity", "owner": "bob", "milestone": "calculus", "status": "closed",
             "custom": {"prerequisite_concepts": "[4]"}}
        ],
        "permissions": [["teachers", "TICKET_ADMIN"], ["carol", "teachers"], ["bob", "TICKET_VIEW"]],
        "cookies": [["alice-cookie", "alice"], ["carol-cookie", "carol"]]
    }))
}

impl TracEnv {
    /// Makes a change through Trac's own `Ticket.save_changes`.
    pub fn trac_change(&self, id: i64, spec: Value) {
        helper(
            &self.path(),
            &["change", &id.to_string()],
            Some(&spec.to_string()),
        );
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A PostgreSQL cluster of the test's own, so it can stop the database mid-test.
pub struct PrivatePostgres {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub admin_url: String,
}

impl PrivatePostgres {
    fn pg(&self, tool: &str) -> Command {
        let bin = PathBuf::from(peer("PG_BIN", "PostgreSQL's server binaries")).join(tool);
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(bin);
            c
        } else {
            Command::new(bin)
        }
    }

    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        if is_root() {
            let ok = Command::new("chown")
                .arg("postgres")
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown the cluster folder to postgres");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let me = PrivatePostgres {
            admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            dir,
            port,
        };
        let out = me
            .pg("initdb")
            .arg("-D")
            .arg(me.dir.path().join("data"))
            .args(["-A", "trust", "-U", "postgres", "--no-sync"])
            .output()
            .expect("initdb");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        me.up();
        me
    }

    pub fn up(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let out = self
            .pg("pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .args(["-w", "-o", &opts, "start"])
            .output()
            .expect("pg_ctl start");
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn down(&self) {
        let _ = self
            .pg("pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.down();
    }
}

/// A Trac environment in a database of `server`.
pub async fn trac_env_on(admin_url: &str) -> TracEnv {
    let name = unique("trac");
    let mut conn = sqlx_pg(admin_url).await;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    let url = with_database(admin_url, &name);
    TracEnv::init(&url, url.clone())
}

/// A Redis server of the test's own, so it can stop the cache mid-test.
pub struct PrivateRedis {
    child: std::process::Child,
    pub url: String,
}

impl PrivateRedis {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// With more server arguments, e.g. `--requirepass TOKEN` as ElastiCache's AUTH.
    pub fn start_with(extra: &[&str]) -> Self {
        let bin = peer("REDIS_SERVER", "redis-server");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let child = Command::new(bin)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(extra)
            .stdout(Stdio::null())
            .spawn()
            .expect("start redis-server");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        PrivateRedis {
            child,
            url: format!("redis://127.0.0.1:{port}"),
        }
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
