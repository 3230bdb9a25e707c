//! The Docker runtime of `learntrac local up` against this machine's engine. The engine
//! cannot pull postgres:15, redis:7 or python:2.7, so scripts/test makes one Debian image
//! (debootstrap) holding PostgreSQL 15 and Redis 7 that `local.yaml` points at, and a
//! stand-in for python:2.7-slim-buster on which the production Trac Dockerfile is built
//! unchanged: the stack runs the real Trac 1.4.4 image, started the ECS way.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Cli, Run, commit_all, free_port, peer, repo_root, write};
use serde_json::Value;

/// An attachment's content, uploaded through Trac's form.
const NOTES: &str = "attachment kept on the Trac volume\n";

struct Stack {
    dir: tempfile::TempDir,
    prefix: String,
    port: u16,
    child: Option<Child>,
}

impl Stack {
    fn new(edit: impl Fn(String) -> String) -> Self {
        let image = peer(
            "LEARNTRAC_TEST_SERVICES_IMAGE",
            "a Debian image with PostgreSQL and Redis",
        );
        let py27 = peer(
            "LEARNTRAC_TEST_PY27_IMAGE",
            "the python:2.7-slim-buster stand-in",
        );
        let ca_url = peer("LEARNTRAC_TEST_CA_URL", "the test RDS CA served over HTTP");
        let dir = tempfile::tempdir().expect("temp dir");
        let project = format!("ld{}x{}", std::process::id() % 100_000, free_port() % 1000);
        let local = std::fs::read_to_string(repo_root().join("environments/local.yaml"))
            .expect("local.yaml");
        let yaml = edit(
            local
                .replace("project: learntrac", &format!("project: {project}"))
                .replace("/learntrac/local/", &format!("/{project}/local/"))
                .replace(
                    "postgres_image: postgres:15",
                    &format!("postgres_image: {image}"),
                )
                .replace(
                    "redis_image: redis:7-alpine",
                    &format!("redis_image: {image}"),
                )
                .replace("python:2.7-slim-buster", &py27)
                .replace(
                    "  backup_retention_days: 0\n",
                    &format!("  backup_retention_days: 0\n  ca_bundle_url: {ca_url}\n"),
                ),
        );
        let w = |rel: &str, text: &str| write(dir.path(), rel, text);
        w("environments/local.yaml", &yaml);
        w(".gitignore", ".learntrac/\n");
        std::fs::create_dir_all(dir.path().join("tmpl/docker")).expect("templates folder");
        common::copy_trac_legacy(dir.path());
        let s = Stack {
            dir,
            prefix: format!("{project}-local"),
            port: free_port(),
            child: None,
        };
        commit_all(s.path(), "stack");
        s
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn commit(&self, message: &str) {
        commit_all(self.path(), message);
    }

    fn cli(&self, args: &[&str]) -> Cli {
        Cli::new().root(self.path()).args(args)
    }

    /// The service's files, for its production image (built on stand-ins for its bases;
    /// scripts/test built it once, so this build reuses its layers).
    fn add_service_image(&self) {
        common::copy_service_workspace(self.path());
        let yaml = self.path().join("environments/local.yaml");
        let text = std::fs::read_to_string(&yaml).expect("read");
        std::fs::write(&yaml, common::with_service_bases(&text)).expect("write");
        self.commit("service image");
    }

    fn tmpl(&self) -> PathBuf {
        self.path().join("tmpl")
    }

    /// `local up` in the background until it serves (or exits: then its output).
    fn up(&mut self, extra: &[&str]) -> String {
        let log = self.path().join("up.log");
        let file = std::fs::File::create(&log).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_learntrac"))
            .arg("--root")
            .arg(self.path())
            .args([
                "local",
                "up",
                "--port",
                &self.port.to_string(),
                "--templates",
            ])
            .arg(self.tmpl())
            .args(extra)
            .env("CI", "true")
            .stdout(file.try_clone().expect("log"))
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .expect("local up");
        self.child = Some(child);
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(300) {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("LearnTrac is up") {
                return text;
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!("local up exited ({status}):\n{text}");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!(
            "local up did not come up:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Stops the foreground `up` as Ctrl-C would (the containers keep running).
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-INT", &c.id().to_string()])
                .status();
            common::wait_for(&mut c, Duration::from_secs(60));
        }
    }

    fn get(&self, path: &str) -> (u16, String) {
        let out = Command::new("curl")
            .args(["-s", "-w", "\n%{http_code}"])
            .arg(format!("http://127.0.0.1:{}{path}", self.port))
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    fn docker(&self, args: &[&str]) -> String {
        let out = Command::new("docker").args(args).output().expect("docker");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn containers(&self) -> String {
        self.docker(&[
            "ps",
            "-a",
            "--filter",
            &format!("label=dev.learntrac.stack={}", self.prefix),
            "--format",
            "{{.Names}}",
        ])
    }

    fn volumes(&self) -> String {
        self.docker(&[
            "volume",
            "ls",
            "--filter",
            &format!("label=dev.learntrac.stack={}", self.prefix),
            "--format",
            "{{.Name}}",
        ])
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.stop();
        let _ = self.cli(&["local", "down", "--volumes"]).run();
        common::remove_images(&self.prefix);
    }
}

fn line_with<'a>(text: &'a str, start: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no line starting with {start:?} in:\n{text}"))
}

#[test]
fn the_docker_runtime_runs_routes_keeps_what_is_unchanged_and_cleans_up() {
    let mut s = Stack::new(|y| y);

    // 1. Up from nothing: every component created and healthy, a request to each through
    //    the router.
    let out = s.up(&["--seed-demo"]);
    for c in ["postgres", "redis", "trac"] {
        assert!(line_with(&out, c).contains("created, healthy"), "{out}");
    }
    let (code, body) = s.get("/api/LearnTrac/health");
    assert_eq!(code, 200, "{body}");
    let health: Value = serde_json::from_str(&body).expect("health JSON");
    assert_eq!(
        health["status"], "healthy",
        "database and Redis both up: {health}"
    );
    let (code, body) = s.get("/wiki/WikiStart");
    assert_eq!(code, 200, "Trac through the router: {body}");
    assert!(body.contains("Trac"), "Trac's page: {body}");
    let (code, _) = s.get("/chrome/common/css/trac.css");
    assert_eq!(code, 200, "Trac's static files (priority 80 rule)");
    let (code, _) = s.get("/nowhere");
    assert_eq!(code, 404, "no rule: the listener's default");
    let token = out
        .split("Bearer ")
        .nth(1)
        .and_then(|t| t.split('\'').next())
        .expect("a demo token");
    let progress = Command::new("curl")
        .args(["-s", "-H", &format!("Authorization: Bearer {token}")])
        .arg(format!(
            "http://127.0.0.1:{}/api/LearnTrac/students/alice/progress",
            s.port
        ))
        .output()
        .expect("curl");
    let progress: Value = serde_json::from_slice(&progress.stdout).expect("progress JSON");
    assert_eq!(
        progress["total_concepts"], 5,
        "demo data in PostgreSQL: {progress}"
    );
    // Signed in through Trac's Login (the container's TRAC_HTDIGEST from the demo's
    // accounts) as alice, who owns concept #1.
    let base = format!("http://127.0.0.1:{}", s.port);
    let accounts =
        std::fs::read_to_string(s.path().join(".learntrac/local/embedded/demo-accounts"))
            .expect("the demo's accounts");
    let password = accounts
        .lines()
        .find_map(|l| l.strip_prefix("alice student "))
        .expect("alice's password");
    let alice = common::TracUser::login(&base, "alice", password.trim());
    // The demo tickets are Trac's own: Trac 1.4.4 serves them to people signed in, and
    // nothing of them to a visitor who is not.
    let (code, body) = alice.get("/ticket/1");
    assert_eq!(code, 200);
    assert!(
        body.contains("Variables and expressions"),
        "ticket #1 in Trac"
    );
    for path in ["/ticket/1", "/query", "/report/1"] {
        assert_eq!(s.get(path).0, 403, "{path} for a visitor not signed in");
    }
    // Trac's files: an attachment uploaded through Trac's own form, through the router,
    // lands on the Trac volume (alice owns #1, so she may attach to it).
    let notes = s.path().join("notes.txt");
    std::fs::write(&notes, NOTES).expect("write the attachment");
    assert_eq!(
        alice.get("/newticket").0,
        403,
        "a student files no concepts"
    );
    // The teacher gives one concept to two students through Trac 1.4.4's form: one each,
    // bob's prerequisite his own #4 where alice's is her #1 (the roles plugin on Python 2.7).
    let carol_password = accounts
        .lines()
        .find_map(|l| l.strip_prefix("carol teacher "))
        .expect("carol's password");
    let carol = common::TracUser::login(&base, "carol", carol_password.trim());
    let (status, head, body) = carol.form(
        "/newticket",
        "/newticket",
        &[
            ("field_summary", "Inequalities"),
            ("field_type", "task"),
            ("field_prerequisite_concepts", "#1"),
            ("action", "create_and_assign"),
            ("action_create_and_assign_reassign_owner", "alice, bob"),
            ("submit", "Create ticket"),
        ],
        None,
    );
    assert_eq!(status, 303, "{head}{body:.600}");
    let (_, listed) = carol.get("/teacher/concepts?owner=bob");
    let listed: Value = serde_json::from_str(&listed).expect("bob's concepts as JSON");
    let bobs = listed["concepts"].as_array().expect("concepts");
    let copy = bobs
        .iter()
        .find(|c| c["summary"] == "Inequalities")
        .unwrap_or_else(|| panic!("bob's own Inequalities: {listed}"));
    let (_, page) = carol.get(&format!("/ticket/{}", copy["id"]));
    assert!(
        page.contains(">#4</a>"),
        "bob's prerequisite is his #4: {page:.3000}"
    );
    assert_eq!(alice.get("/teacher/concepts?owner=bob").0, 403);
    let (status, head, body) = alice.form(
        "/attachment/ticket/1/?action=new",
        "/attachment/ticket/1/",
        &[
            ("action", "new"),
            ("realm", "ticket"),
            ("id", "1"),
            ("description", "notes"),
        ],
        Some(("attachment", &notes)),
    );
    assert_eq!(status, 303, "upload through Trac's form: {head}{body}");
    assert_eq!(
        alice.get("/raw-attachment/ticket/1/notes.txt"),
        (200, NOTES.to_string())
    );
    assert_eq!(s.get("/raw-attachment/ticket/1/notes.txt").0, 403);

    let ps: Run = s.cli(&["local", "ps", "-o", "json"]).run();
    let ps: Value = serde_json::from_str(&ps.stdout).expect("ps JSON");
    for c in ["postgres", "redis", "trac"] {
        let comp = ps["components"]
            .as_array()
            .expect("components")
            .iter()
            .find(|x| x["name"] == c)
            .unwrap_or_else(|| panic!("{c} in {ps}"));
        assert_eq!(comp["health"], "healthy", "{comp}");
    }

    // 2. Up again with nothing changed: nothing recreated.
    s.stop();
    let out = s.up(&[]);
    for c in ["postgres", "redis", "trac"] {
        assert!(line_with(&out, c).contains("unchanged"), "{out}");
    }

    // 3. A configuration change to Trac only: only Trac recreated.
    s.stop();
    let yaml = s.path().join("environments/local.yaml");
    let text = std::fs::read_to_string(&yaml).expect("read");
    std::fs::write(&yaml, text.replacen("port: 8000", "port: 8002", 1)).expect("write");
    s.commit("trac port");
    let out = s.up(&[]);
    assert!(line_with(&out, "trac").contains("recreated"), "{out}");
    assert!(line_with(&out, "postgres").contains("unchanged"), "{out}");
    assert!(line_with(&out, "redis").contains("unchanged"), "{out}");
    let (code, _) = s.get("/wiki/WikiStart");
    assert_eq!(code, 200, "Trac on its new port, through the router");
    let logs = s.cli(&["local", "logs", "trac"]).run();
    assert_eq!(logs.code, 0, "{}", logs.stderr);
    assert!(
        logs.stdout.contains("environment startup [Trac 1.4.4]"),
        "Trac's container log: {}",
        logs.stdout
    );
    // The attachment survived the Trac container being recreated…
    assert_eq!(
        alice.get("/raw-attachment/ticket/1/notes.txt"),
        (200, NOTES.to_string()),
        "the attachment after Trac's container was recreated (her sign-in kept)"
    );
    // …and a second Trac container on the same volume (as a second ECS task on the same
    // EFS access point) serves it too.
    let trac = format!("{}-trac", s.prefix);
    let info: Value =
        serde_json::from_str(&s.docker(&["inspect", &trac, "--format", "{{json .}}"]))
            .expect("docker inspect");
    let volume = info["Mounts"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["Destination"] == "/var/trac/projects"))
        .and_then(|m| m["Name"].as_str())
        .expect("Trac's volume")
        .to_string();
    let second = format!("{trac}-second");
    let mut run = vec![
        "run".to_string(),
        "-d".into(),
        "--name".into(),
        second.clone(),
        "--network".into(),
        s.prefix.clone(),
        "-v".into(),
        format!("{volume}:/var/trac/projects"),
        "-p".into(),
        "127.0.0.1::8002".into(),
    ];
    for e in info["Config"]["Env"].as_array().expect("env") {
        run.push("-e".into());
        run.push(e.as_str().unwrap_or_default().to_string());
    }
    run.push(info["Image"].as_str().expect("image").to_string());
    let started = Command::new("docker")
        .args(&run)
        .output()
        .expect("docker run");
    assert!(started.status.success(), "{started:?}");
    let published = s.docker(&["port", &second, "8002/tcp"]);
    let published = published
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(120);
    let fetched = loop {
        let out = Command::new("curl")
            .args(["-s", "-w", "\n%{http_code}", "-b"])
            .arg(format!("trac_auth={}", alice.auth_cookie()))
            .arg(format!(
                "http://{published}/raw-attachment/ticket/1/notes.txt"
            ))
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.ends_with("\n200") || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let _ = s.docker(&["rm", "-f", &second]);
    assert_eq!(
        fetched,
        format!("{NOTES}\n200"),
        "the second Trac container serves the attachment"
    );

    // 4. The service as its own container, from its production Dockerfile.
    s.stop();
    s.add_service_image();
    let out = s.up(&["--service", "container"]);
    assert!(
        line_with(&out, "learntrac").contains("created, healthy"),
        "{out}"
    );
    for c in ["postgres", "redis", "trac"] {
        assert!(line_with(&out, c).contains("unchanged"), "{out}");
    }
    let (code, body) = s.get("/api/LearnTrac/health");
    assert_eq!(
        code, 200,
        "the service container through the router: {body}"
    );
    assert!(
        s.containers().contains(&format!("{}-learntrac", s.prefix)),
        "{}",
        s.containers()
    );

    // 5. Ctrl-C in the middle of `up` leaves nothing the next `up` trips over.
    s.stop();
    let mut early = Command::new(env!("CARGO_BIN_EXE_learntrac"))
        .arg("--root")
        .arg(s.path())
        .args(["local", "up", "--port", &s.port.to_string(), "--templates"])
        .arg(s.tmpl())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("local up");
    std::thread::sleep(Duration::from_millis(1500));
    let _ = Command::new("kill")
        .args(["-INT", &early.id().to_string()])
        .status();
    common::wait_for(&mut early, Duration::from_secs(60));
    let out = s.up(&[]);
    assert!(out.contains("LearnTrac is up (docker runtime)"), "{out}");
    assert!(
        !s.containers().contains(&format!("{}-learntrac", s.prefix)),
        "back in-process: the service container is gone"
    );

    // 6. down: containers and network gone, volumes kept; down --volumes: volumes gone.
    s.stop();
    let down = s.cli(&["local", "down"]).run();
    assert_eq!(down.code, 0, "{}", down.stderr);
    assert_eq!(s.containers().trim(), "", "containers removed");
    assert_eq!(
        s.volumes().lines().count(),
        3,
        "volumes kept: {}",
        s.volumes()
    );
    let down = s.cli(&["local", "down", "--volumes"]).run();
    assert_eq!(down.code, 0, "{}", down.stderr);
    assert_eq!(s.volumes().trim(), "", "volumes removed");
}

#[test]
fn a_component_that_never_becomes_healthy_fails_with_its_log_lines() {
    // PostgreSQL's first start (initdb) takes longer than one second.
    let mut s = Stack::new(|y| y.replace("redis_image:", "health_timeout: 1\n  redis_image:"));
    let log = s.path().join("up.log");
    let started = Instant::now();
    let run = s
        .cli(&[
            "local",
            "up",
            "--port",
            &s.port.to_string(),
            "--templates",
            &s.tmpl().to_string_lossy(),
        ])
        .run();
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "gave up on time"
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("error: local stack, postgres: not healthy after 1s"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("last log lines of {}-postgres", s.prefix)),
        "{}",
        run.stderr
    );
    let _ = std::fs::remove_file(log);
    s.child = None;
}
