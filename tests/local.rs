//! `learntrac local` with the embedded runtime, on a machine state with no Docker socket.

mod common;
#[path = "../learntrac-service/tests/common/fake_audio.rs"]
mod fake_audio;
#[path = "../learntrac-service/tests/common/fake_aws_speech.rs"]
mod fake_aws_speech;
#[path = "../learntrac-service/tests/common/fake_model.rs"]
mod fake_model;
#[path = "../learntrac-service/tests/common/speech.rs"]
mod speech;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Project, free_port, wait_for};
use serde_json::Value;

fn learntrac(dir: &Path, home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_learntrac"));
    c.current_dir(dir)
        .env_remove("LEARNTRAC_ROOT")
        .env("HOME", home)
        .env_remove("XDG_DATA_HOME")
        // No Docker socket on this machine state.
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    c
}

/// A running `local up`. A test that fails before its `local down` interrupts it as Ctrl-C
/// would (so `up` stops the Trac it started), instead of leaving the stack running.
struct Up(Option<Child>);

impl Up {
    fn wait_with_output(mut self) -> std::io::Result<std::process::Output> {
        self.0.take().expect("a running up").wait_with_output()
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while matches!(child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts `local up` and waits until the router answers.
fn up(dir: &Path, home: &Path, port: u16, seed: bool) -> Up {
    up_with_env(dir, home, port, seed, &[])
}

/// `up`, with more variables in its environment (credentials a shell would hold).
fn up_with_env(dir: &Path, home: &Path, port: u16, seed: bool, env: &[(&str, &str)]) -> Up {
    let mut cmd = learntrac(dir, home);
    cmd.envs(env.iter().copied());
    cmd.args(["local", "up", "--port", &port.to_string()]);
    if seed {
        cmd.arg("--seed-demo");
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("local up");
    // The first `up` on a machine installs Trac into its managed environment (~20 s).
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    let healthy = loop {
        if learntrac_service::healthcheck::probe(port, Duration::from_millis(500)).is_ok() {
            break true;
        }
        if std::time::Instant::now() > deadline || matches!(child.try_wait(), Ok(Some(_))) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    if !healthy {
        let _ = child.kill();
        let out = child.wait_with_output().expect("reap");
        panic!(
            "local up did not become healthy on {port}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Up(Some(child))
}

async fn get(url: &str, token: Option<&str>) -> (u16, String) {
    let mut rb = reqwest::Client::new().get(url);
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    let resp = rb.send().await.expect("request");
    (resp.status().as_u16(), resp.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread")]
async fn embedded_up_routes_like_the_alb_and_down_keeps_data_unless_asked() {
    let project = Project::new();
    let home = tempfile::tempdir().expect("home");
    let port = free_port();
    let data = project.path().join(".learntrac/local/embedded");

    let child = up(project.path(), home.path(), port, true);
    let secret = std::fs::read_to_string(data.join("token-secret")).expect("token secret");
    let alice = learntrac_service::auth::issue_token(secret.trim(), "alice", 600).expect("token");
    let base = format!("http://127.0.0.1:{port}");

    // A rule for learntrac reaches the in-process service, with the demo data.
    let (s, body) = get(
        &format!("{base}/api/LearnTrac/students/alice/progress"),
        Some(&alice),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let progress: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(progress["total_concepts"], 5);
    assert_eq!(
        progress["completed_concepts"], 1,
        "the demo's practice mastered one concept: {progress}"
    );
    // Every other path is Trac's (the listener's default): Trac 1.6 itself, on the same
    // database.
    let (s, body) = get(&format!("{base}/wiki/WikiStart"), None).await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("Powered by"), "Trac's page: {body}");
    let (s, body) = get(&format!("{base}/nowhere"), None).await;
    assert_eq!(s, 404, "Trac's own 404: {body}");
    assert!(
        body.contains("No handler matched request to /nowhere"),
        "{body}"
    );
    // LearnTrac's paths are the service's, whatever they end in.
    let (s, body) = get(&format!("{base}/api/LearnTrac/app.js"), None).await;
    assert_eq!(s, 404, "{body}");
    assert!(
        body.contains("not_found"),
        "the service's JSON error: {body}"
    );

    let ps = learntrac(project.path(), home.path())
        .args(["local", "ps", "-o", "json"])
        .output()
        .expect("ps");
    let ps: Value = serde_json::from_slice(&ps.stdout).expect("ps JSON");
    assert_eq!(ps["runtime"], "embedded");
    assert_eq!(ps["components"][0]["health"], "healthy", "{ps}");
    let trac = ps["components"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "trac"))
        .expect("trac in ps");
    assert_eq!(trac["health"], "healthy", "{ps}");
    let logs = learntrac(project.path(), home.path())
        .args(["local", "logs", "trac"])
        .output()
        .expect("logs");
    assert!(logs.status.success());
    assert!(
        String::from_utf8_lossy(&logs.stdout).contains("GET /wiki/WikiStart"),
        "Trac's own log: {}",
        String::from_utf8_lossy(&logs.stdout)
    );
    let bogus = learntrac(project.path(), home.path())
        .args(["local", "logs", "bogus"])
        .output()
        .expect("logs");
    assert_eq!(bogus.status.code(), Some(2), "a usage error");

    // A second `up` while one runs is refused.
    let again = learntrac(project.path(), home.path())
        .args(["local", "up", "--port", &free_port().to_string()])
        .output()
        .expect("up");
    assert_eq!(
        again.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    let down = learntrac(project.path(), home.path())
        .args(["local", "down"])
        .output()
        .expect("down");
    assert!(down.status.success());
    let out = child.wait_with_output().expect("up exits");
    assert!(
        out.status.success(),
        "up exits cleanly on down: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("stopped (SIGTERM (`learntrac local down`"),
        "up says why it stopped: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("LearnTrac is up (embedded runtime)"));
    assert!(data.join("trac.db").exists(), "down keeps data");

    // Up again with --seed-demo: same data, nothing duplicated.
    let child = up(project.path(), home.path(), port, true);
    let (_, body) = get(
        &format!("{base}/api/LearnTrac/students/alice/concepts"),
        Some(&alice),
    )
    .await;
    let concepts: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        concepts["concepts"].as_array().map(Vec::len),
        Some(5),
        "{concepts}"
    );
    let down = learntrac(project.path(), home.path())
        .args(["local", "down", "--volumes"])
        .output()
        .expect("down");
    assert!(down.status.success());
    child.wait_with_output().expect("up exits");
    assert!(!data.exists(), "down --volumes removes the data");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_newcomer_without_a_checkout_gets_the_builtin_environment() {
    let empty = tempfile::tempdir().expect("dir");
    let port = free_port();
    let child = up(empty.path(), empty.path(), port, false);
    let (s, _) = get(
        &format!("http://127.0.0.1:{port}/api/LearnTrac/health"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let down = learntrac(empty.path(), empty.path())
        .args(["local", "down", "--volumes"])
        .output()
        .expect("down");
    assert!(down.status.success());
    let out = child.wait_with_output().expect("exit");
    assert!(String::from_utf8_lossy(&out.stderr).contains("using the built-in local environment"));
    assert!(
        !empty
            .path()
            .join(".local/share/learntrac/local/embedded")
            .exists()
    );
}

#[test]
fn a_busy_port_is_a_preflight_error() {
    let project = Project::new();
    let home = tempfile::tempdir().expect("home");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port();
    let out = learntrac(project.path(), home.path())
        .args(["local", "up", "--port", &port.to_string()])
        .output()
        .expect("up");
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("pass --port"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A page fetched through the router: status, whether Trac's own server answered, body.
async fn fetch(client: &reqwest::Client, url: &str) -> (u16, bool, String) {
    let resp = client.get(url).send().await.expect("request");
    let status = resp.status().as_u16();
    let by_trac = resp
        .headers()
        .get("server")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|s| s.starts_with("tracd/"));
    (status, by_trac, resp.text().await.unwrap_or_default())
}

/// Site-relative links (`href="/…"`) of a page, query strings kept, fragments dropped.
fn links(html: &str) -> Vec<String> {
    let mut out: Vec<String> = html
        .split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|l| l.starts_with('/') && !l.starts_with("//"))
        .map(|l| l.split('#').next().unwrap_or(l).replace("&amp;", "&"))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// A page as a person sees it: headless Chromium's screenshot, kept as a test artifact.
fn screenshot(url: &str, name: &str) -> std::path::PathBuf {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| {
        panic!(
            "headless Chromium is required: set CHROMIUM (scripts/test installs Debian's chromium)"
        )
    });
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(
            || common::repo_root().join("target"),
            std::path::PathBuf::from,
        )
        .join("test-artifacts");
    std::fs::create_dir_all(&dir).expect("artifacts folder");
    let file = dir.join(name);
    let _ = std::fs::remove_file(&file);
    let profile = tempfile::tempdir().expect("profile");
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1280,900",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", file.display()))
        .arg(url)
        .output()
        .expect("run chromium");
    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 10_000,
        "a screenshot of {url} ({size} bytes): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    file
}

#[tokio::test(flavor = "multi_thread")]
async fn embedded_trac_serves_every_page_a_student_follows() {
    let project = Project::new();
    let home = tempfile::tempdir().expect("home");
    let port = free_port();
    let child = up(project.path(), home.path(), port, true);
    let base = format!("http://127.0.0.1:{port}");
    let anonymous = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");

    // A visitor who has not signed in (the load balancer answers the whole internet) sees
    // the wiki and the roadmap's units, never a concept or whose it is.
    for path in ["/ticket/1", "/query", "/report", "/report/1"] {
        let (status, by_trac, body) = fetch(&anonymous, &format!("{base}{path}")).await;
        assert_eq!((status, by_trac), (403, true), "{path}: {body:.300}");
    }
    for path in [
        "/",
        "/timeline",
        "/search?q=equations&ticket=on&wiki=on",
        "/roadmap",
        "/milestone/algebra-1",
        "/attachment/ticket/1/",
    ] {
        let (status, _, body) = fetch(&anonymous, &format!("{base}{path}")).await;
        assert!(status == 200 || status == 403, "{path}: {status}");
        for private in [
            "Variables and expressions",
            "Linear equations",
            "bob",
            "alice",
        ] {
            assert!(
                !body.contains(private),
                "{path} shows `{private}` to a visitor who has not signed in"
            );
        }
    }

    // A student signed in through Trac's Login follows Trac's own navigation: every page
    // is Trac's, with status 200.
    let pw = demo_passwords(&project.path().join(".learntrac/local/embedded"));
    let alice = common::TracUser::login(&base, "alice", &pw["alice"]);
    let cookie = alice.auth_cookie();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(reqwest::header::HeaderMap::from_iter([(
            reqwest::header::COOKIE,
            reqwest::header::HeaderValue::from_str(&format!("trac_auth={cookie}")).expect("cookie"),
        )]))
        .build()
        .expect("client");
    let mut pages = std::collections::BTreeMap::new();
    for path in [
        "/",
        "/wiki",
        "/query",
        "/report",
        "/search",
        "/timeline",
        "/roadmap",
        "/milestone/algebra-1",
        "/ticket/1",
    ] {
        let (status, by_trac, body) = fetch(&client, &format!("{base}{path}")).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(by_trac, "{path} answered by Trac");
        assert!(body.contains("Powered by"), "{path}: Trac's page");
        pages.insert(path, body);
    }
    let ticket = &pages["/ticket/1"];
    assert!(
        pages["/"].contains("<a href=\"/learn/\">Learn</a>"),
        "the student page in Trac's navigation"
    );
    for field in ["Learning difficulty", "Mastery threshold", "Prerequisites"] {
        assert!(
            ticket.contains(field),
            "LearnTrac's field {field} on the ticket page"
        );
    }
    assert!(
        ticket.contains("Variables and expressions"),
        "the demo concept"
    );
    assert!(
        pages["/roadmap"].contains("closed: 1"),
        "the mastered concept counts as done on the roadmap"
    );
    for milestone in ["algebra-1", "calculus-1"] {
        assert!(
            pages["/roadmap"].contains(milestone),
            "{milestone} on the roadmap"
        );
    }
    // The demo's practice mastered concept #1: Trac shows the status and the change in the
    // ticket's history, as it shows any change.
    assert!(
        ticket.contains("<a href=\"/query?status=mastered\">mastered</a>"),
        "the status in the ticket's header"
    );
    assert!(
        ticket.contains(
            "<span class=\"trac-field-old\">new</span> → <span class=\"trac-field-new\">mastered</span>"
        ),
        "the change in the ticket's history"
    );
    let (status, by_trac, health) = fetch(&client, &format!("{base}/api/LearnTrac/health")).await;
    assert_eq!((status, by_trac), (200, false));
    assert!(health.contains("\"service\":\"learntrac\""), "{health}");

    // Every link on the front page, a ticket and the roadmap reaches the service it names:
    // LearnTrac's API paths the service, everything else Trac (never the router itself).
    let mut crawled = 0;
    for page in ["/", "/ticket/1", "/roadmap"] {
        for link in links(&pages[page]) {
            let (status, by_trac, body) = fetch(&client, &format!("{base}{link}")).await;
            // The service's paths: its API and the student page (Trac's "Learn" tab).
            let api = link.starts_with("/api/LearnTrac/")
                || link.starts_with("/api/analytics/")
                || link.starts_with("/learn/");
            assert_eq!(
                by_trac, !api,
                "{link} (linked from {page}) → {status}: {body:.200}"
            );
            assert!(status < 500 || by_trac, "{link} → {status}");
            crawled += 1;
        }
    }
    assert!(crawled > 40, "{crawled} links followed");

    // What a person sees: the front page as any visitor, a concept and the roadmap as
    // the student.
    screenshot(&format!("{base}/"), "trac-front-page.png");
    let mut browser = Browser::open("about:blank", None).await;
    browser.set_cookie(&base, "trac_auth", &cookie).await;
    for (path, name) in [
        ("/ticket/1", "trac-ticket-1.png"),
        ("/roadmap", "trac-roadmap.png"),
    ] {
        browser.navigate(&format!("{base}{path}")).await;
        browser.screenshot(name).await;
    }
    drop(browser);

    let down = learntrac(project.path(), home.path())
        .args(["local", "down", "--volumes"])
        .output()
        .expect("down");
    assert!(down.status.success());
    let out = child.wait_with_output().expect("up exits");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("(Trac 1.6, tracd pid"), "{stdout}");
}

#[test]
fn ctrl_c_stops_up_at_any_moment_even_started_in_the_background() {
    let project = Project::new();
    let home = tempfile::tempdir().expect("home");
    // A non-interactive shell starts background jobs with SIGINT ignored; `up` installs its
    // own handler first thing, so Ctrl-C (SIGINT) still stops it — while starting, and
    // while serving.
    for delay_ms in [150u64, 4000] {
        let port = free_port();
        let mut shell = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "\"$0\" local up --port {port} >\"$1/up.out\" 2>\"$1/up.err\" & echo $!; wait"
            ))
            .arg(env!("CARGO_BIN_EXE_learntrac"))
            .arg(home.path())
            .current_dir(project.path())
            .env("HOME", home.path())
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .env_remove("LEARNTRAC_ROOT")
            .stdout(Stdio::piped())
            .spawn()
            .expect("sh");
        let mut pid = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(shell.stdout.take().expect("stdout")),
            &mut pid,
        )
        .expect("pid");
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = Command::new("kill").args(["-INT", pid.trim()]).status();
        let status = wait_for(&mut shell, Duration::from_secs(60));
        assert!(status.success(), "the shell's wait ended");
        let err = std::fs::read_to_string(home.path().join("up.err")).unwrap_or_default();
        assert!(
            err.contains("Ctrl-C"),
            "after {delay_ms} ms, up says Ctrl-C stopped it: {err}"
        );
        let _ = learntrac(project.path(), home.path())
            .args(["local", "down"])
            .output();
    }
}

#[test]
fn down_never_signals_a_process_that_only_reuses_the_recorded_pid() {
    let project = Project::new();
    let home = tempfile::tempdir().expect("home");
    let data = project.path().join(".learntrac/local/embedded");
    std::fs::create_dir_all(&data).expect("data dir");
    // A stack killed outright left its record; its PID now belongs to someone else.
    let mut bystander = Command::new("sleep").arg("60").spawn().expect("sleep");
    for record in [
        // As older versions wrote it: the PID alone.
        serde_json::json!({"pid": bystander.id(), "runtime": "embedded", "router_port": 9, "started_at": 0}),
        // With a start time that is not the bystander's.
        serde_json::json!({"pid": bystander.id(), "pid_started": 1, "runtime": "embedded", "router_port": 9, "started_at": 0}),
    ] {
        std::fs::write(data.join("running.json"), record.to_string()).expect("record");
        let down = learntrac(project.path(), home.path())
            .args(["local", "down"])
            .output()
            .expect("down");
        assert!(down.status.success());
        assert!(
            String::from_utf8_lossy(&down.stderr).contains("no local stack is running"),
            "{}",
            String::from_utf8_lossy(&down.stderr)
        );
        assert!(
            bystander.try_wait().expect("wait").is_none(),
            "the bystander was killed by `local down`"
        );
    }
    let _ = bystander.kill();
    let _ = bystander.wait();
}

#[test]
fn ps_into_a_closed_pipe_exits_quietly() {
    let project = Project::new();
    let home = tempfile::tempdir().expect("home");
    let mut child = learntrac(project.path(), home.path())
        .args(["local", "ps"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ps");
    // `| head -0`: the reader is gone before the first line.
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("ps exits");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_half_created_database_is_repaired_and_a_foreign_one_refused() {
    let project = Project::new();
    let home = tempfile::tempdir().expect("home");
    let data = project.path().join(".learntrac/local/embedded");
    std::fs::create_dir_all(&data).expect("data dir");

    // Not SQLite at all: refused with the fix, left as it was.
    std::fs::write(data.join("trac.db"), "precious notes\n").expect("write");
    let out = learntrac(project.path(), home.path())
        .args(["local", "up", "--port", &free_port().to_string()])
        .output()
        .expect("up");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("is not a Trac database"), "{stderr}");
    assert!(stderr.contains("local down --volumes"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(data.join("trac.db")).expect("kept"),
        "precious notes\n"
    );

    // What a crash during creation once left: an empty file. Repaired, and the API works.
    std::fs::write(data.join("trac.db"), "").expect("write");
    let port = free_port();
    let child = up(project.path(), home.path(), port, true);
    let secret = std::fs::read_to_string(data.join("token-secret")).expect("token secret");
    let alice = learntrac_service::auth::issue_token(secret.trim(), "alice", 600).expect("token");
    let (s, body) = get(
        &format!("http://127.0.0.1:{port}/api/LearnTrac/students/alice/concepts"),
        Some(&alice),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let down = learntrac(project.path(), home.path())
        .args(["local", "down"])
        .output()
        .expect("down");
    assert!(down.status.success());
    child.wait_with_output().expect("up exits");
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "the data folder is private");
    assert_eq!(mode(&data.join("token-secret")), 0o600);
}

/// `local up --seed-demo` (embedded runtime) with the chat tutor on the model double and
/// VOICE_ENGINE as given; alice's token and the router's address.
struct TutorStack {
    // First: fields drop in order, and `up` is stopped before its folders are removed.
    child: Up,
    _model: fake_model::FakeModel,
    project: Project,
    home: tempfile::TempDir,
    alice: String,
    bob: String,
    base: String,
    port: u16,
}

impl TutorStack {
    async fn up(voice: &str) -> Self {
        Self::up_with(&format!("      VOICE_ENGINE: {voice}\n")).await
    }

    /// With `voice` as the service's voice lines of local.yaml.
    async fn up_with(voice: &str) -> Self {
        Self::up_with_env(voice, &[]).await
    }

    async fn up_with_env(voice: &str, env: &[(&str, &str)]) -> Self {
        let model = fake_model::FakeModel::start().await;
        let project = Project::new();
        project.edit(
            "local",
            "      VOICE_ENGINE: auto\n",
            &format!(
                "      CHAT_BASE_URL: {}\n      CHAT_MODEL: tutor-model\n{voice}",
                model.base_url
            ),
        );
        let home = tempfile::tempdir().expect("home");
        let port = free_port();
        let child = up_with_env(project.path(), home.path(), port, true, env);
        let data = project.path().join(".learntrac/local/embedded");
        let secret = std::fs::read_to_string(data.join("token-secret")).expect("token secret");
        let token = |who| learntrac_service::auth::issue_token(secret.trim(), who, 600);
        let (alice, bob) = (token("alice").expect("token"), token("bob").expect("token"));
        TutorStack {
            _model: model,
            project,
            home,
            child,
            alice,
            bob,
            base: format!("http://127.0.0.1:{port}"),
            port,
        }
    }

    /// `local down`; returns what `up` printed.
    fn down(self) -> String {
        let down = learntrac(self.project.path(), self.home.path())
            .args(["local", "down"])
            .output()
            .expect("down");
        assert!(down.status.success());
        let out = self.child.wait_with_output().expect("up exits");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_student_page_practises_and_streams_the_tutor_through_the_router() {
    let stack = TutorStack::up("auto").await;
    let (alice, base) = (&stack.alice, &stack.base);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");

    let (s, health) = get(&format!("{base}/api/LearnTrac/health"), None).await;
    assert_eq!(s, 200);
    let health: Value = serde_json::from_str(&health).expect("json");
    assert_eq!(health["features"]["chat"], "enabled", "{health}");

    // The page through the router's rule: the service's, not Trac's.
    let resp = client
        .get(format!("{base}/learn"))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status().as_u16(), 308);
    assert_eq!(resp.headers()["location"], "/learn/");
    let resp = client
        .get(format!("{base}/learn/"))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status().as_u16(), 200);
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_string();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(
        resp.text()
            .await
            .expect("body")
            .contains("<script src=\"/learn/app.js\"")
    );
    let (s, _) = get(&format!("{base}/learn/app.js"), None).await;
    assert_eq!(s, 200);

    // Server-Sent Events through the router arrive as they are sent, not when the answer ends.
    let started = std::time::Instant::now();
    let mut resp = client
        .post(format!("{base}/api/chat/concepts/2/messages"))
        .bearer_auth(alice)
        .json(&serde_json::json!({"message": "[slow] what is a linear equation?"}))
        .send()
        .await
        .expect("ask");
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/event-stream")
    );
    let mut body = String::new();
    let mut first_delta = None;
    while let Some(chunk) = resp.chunk().await.expect("chunk") {
        body.push_str(&String::from_utf8_lossy(&chunk));
        if first_delta.is_none() && body.contains("event: delta") {
            first_delta = Some(started.elapsed());
        }
    }
    let total = started.elapsed();
    let first_delta = first_delta.expect("a delta event");
    assert!(
        total - first_delta > Duration::from_millis(500),
        "the first piece came at {first_delta:?}, the end at {total:?}: the router held the stream"
    );
    let events = fake_model::sse_events(&body);
    assert_eq!(events.last().map(|e| e.0.as_str()), Some("done"), "{body}");

    // The page, as a student's browser runs it: signed in by the demo token in the link,
    // concept #2 opened, the question put in the box by the link — and asked only when she
    // presses Send (a link must not spend her questions) — the answer streamed in.
    let question = "How do I start?";
    let url = format!(
        "{base}/learn/?concept=2&ask={}#token={alice}",
        question.replace(' ', "%20").replace('?', "%3F")
    );
    let mut browser = Browser::open(&url, None).await;
    browser
        .wait_until(&format!(
            "document.getElementById('question').value === {question:?} && !document.getElementById('send').disabled"
        ))
        .await;
    // (The conversation asked above through the API is on the page already.)
    let bubbles = "document.querySelectorAll('.msg.user').length";
    let before = browser.eval(bubbles).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        (
            browser.eval(bubbles).await,
            browser
                .eval("document.getElementById('question').value")
                .await
        ),
        (before, Value::String(question.into())),
        "the link asked nothing by itself"
    );
    browser
        .eval("document.getElementById('send').click()")
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while browser
        .eval("!!document.querySelector('[data-done]')")
        .await
        != Value::Bool(true)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no finished answer on the page: {}",
            browser.eval("document.body.innerText").await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let page = browser.eval("document.body.innerText").await;
    let page = page.as_str().unwrap_or("");
    browser.screenshot("learn-page-tutor.png").await;
    assert!(page.contains("signed in as alice"), "{page}");
    assert!(
        page.contains("Variables and expressions"),
        "alice's concepts listed: {page}"
    );
    assert!(
        page.contains("#2 Linear equations"),
        "the concept opened: {page}"
    );
    assert!(page.contains(question), "the question in the chat: {page}");
    let answer = fake_model::answer_words("Linear equations").concat();
    assert!(
        page.contains(answer.trim()),
        "the tutor's answer streamed into the page: {page}"
    );

    // On a phone, with the concept and its conversation open: one column, no sideways
    // scroll.
    browser.phone().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    browser.assert_fits_phone("learn-phone-tutor.png").await;

    // A model that fails: the student is told to try again in her words (not the model's),
    // her question stays in the box; reloaded, the failed turn shows as failed.
    browser
        .eval("document.getElementById('question').value = '[500] and then?'; document.getElementById('send').click()")
        .await;
    browser
        .wait_until("document.getElementById('chat-error').innerText.length > 0")
        .await;
    let said = browser
        .eval("document.getElementById('chat-error').innerText")
        .await;
    assert!(
        said.as_str()
            .unwrap_or("")
            .contains("could not answer just now"),
        "{said}"
    );
    assert_eq!(
        browser
            .eval("document.getElementById('question').value")
            .await,
        "[500] and then?",
        "the question is kept for a retry"
    );
    browser.navigate(&format!("{base}/learn/?concept=2")).await;
    browser
        .wait_until("document.querySelectorAll('.msg.assistant.incomplete').length === 1")
        .await;
    browser.screenshot("learn-phone-failed-turn.png").await;

    // A link signing in as someone else, opened in her signed-in tab: asked first, and
    // nothing changes unless she agrees.
    browser
        .navigate(&format!("{base}/learn/?concept=2#token={}", stack.bob))
        .await;
    browser
        .wait_until("!document.getElementById('switch').hidden")
        .await;
    let asked = browser
        .eval("document.getElementById('switch').innerText")
        .await;
    let asked = asked.as_str().unwrap_or("");
    assert!(
        asked.contains("signs in as bob") && asked.contains("signed in as alice"),
        "{asked}"
    );
    browser.screenshot("learn-phone-switch-account.png").await;
    browser
        .eval("document.getElementById('switch-stay').click()")
        .await;
    assert_eq!(
        browser
            .eval("document.getElementById('who').innerText")
            .await,
        "signed in as alice"
    );
    browser
        .navigate(&format!("{base}/learn/#token={}", stack.bob))
        .await;
    browser
        .wait_until("!document.getElementById('switch').hidden")
        .await;
    browser
        .eval("document.getElementById('switch-to').click()")
        .await;
    browser
        .wait_until("document.getElementById('who').innerText === 'signed in as bob'")
        .await;
    assert!(
        browser.exceptions().is_empty(),
        "{:?}",
        browser.exceptions()
    );
    drop(browser);

    let stdout = stack.down();
    assert!(
        stdout.contains("/learn/#token="),
        "up prints the student's link: {stdout}"
    );
}

/// Headless Chromium driven over the DevTools protocol, in real time: a page that streams
/// an answer or listens to a microphone cannot run on virtual time (measured: with
/// `--virtual-time-budget` the streamed answer never arrived in CI). The fake microphone
/// plays `microphone` once.
struct Browser {
    child: std::process::Child,
    _profile: tempfile::TempDir,
    devtools: speech::Socket,
    next_id: u64,
    /// DevTools events that arrived while waiting for answers (Runtime.exceptionThrown…).
    events: Vec<Value>,
}

impl Browser {
    async fn open(url: &str, microphone: Option<&Path>) -> Self {
        let chromium = std::env::var("CHROMIUM").expect("CHROMIUM (scripts/test installs it)");
        let profile = tempfile::tempdir().expect("profile");
        let child =
            Command::new(chromium)
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--window-size=1280,900",
                    "--remote-debugging-port=0",
                    "--use-fake-ui-for-media-stream",
                    "--use-fake-device-for-media-stream",
                    "--autoplay-policy=no-user-gesture-required",
                ])
                .args(microphone.map(|wav| {
                    format!("--use-file-for-fake-audio-capture={}%noloop", wav.display())
                }))
                .arg(format!("--user-data-dir={}", profile.path().display()))
                .arg(url)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("run chromium");
        // Chromium writes the port it chose into the profile.
        let port_file = profile.path().join("DevToolsActivePort");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let port = loop {
            let port = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<u16>().ok()));
            if let Some(p) = port {
                break p;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "Chromium wrote no DevTools port"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let list: Value = reqwest::get(format!("http://127.0.0.1:{port}/json/list"))
            .await
            .expect("DevTools targets")
            .json()
            .await
            .expect("JSON");
        let page = list
            .as_array()
            .and_then(|l| l.iter().find(|t| t["type"] == "page"))
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .expect("the page's DevTools socket")
            .to_string();
        let (devtools, _) = tokio_tungstenite::connect_async(page.as_str())
            .await
            .expect("DevTools");
        Browser {
            child,
            _profile: profile,
            devtools,
            next_id: 0,
            events: Vec::new(),
        }
    }

    /// Alice's page on concept #2, signed in by `token`, with a fake microphone that says
    /// `sentence` (espeak-ng's recording, kept in the returned folder) once the page listens.
    async fn speaking(base: &str, token: &str, sentence: &str) -> (Self, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("dir");
        let wav = dir.path().join("free.wav");
        speech::say(sentence, &wav, 1.0);
        let url = format!("{base}/learn/?concept=2&listen=5#token={token}");
        (Self::open(&url, Some(&wav)).await, dir)
    }

    /// Goes to `url` and waits until the page has loaded; uncaught script errors from then
    /// on are collected (see `exceptions`).
    async fn navigate(&mut self, url: &str) {
        self.call("Runtime.enable", serde_json::json!({})).await;
        self.events.clear();
        self.call("Page.navigate", serde_json::json!({ "url": url }))
            .await;
        self.wait_until("document.readyState === 'complete' && location.href !== 'about:blank'")
            .await;
    }

    /// Waits (up to 30 s) until `expression` is true; panics with the page's text if not.
    async fn wait_until(&mut self, expression: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while self.eval(expression).await != Value::Bool(true) {
            if std::time::Instant::now() > deadline {
                let text = self.eval("document.body && document.body.innerText").await;
                panic!("waited for `{expression}`; the page shows: {text}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Gives the browser a cookie for `url`'s site (a Trac login made elsewhere).
    async fn set_cookie(&mut self, url: &str, name: &str, value: &str) {
        self.call(
            "Network.setCookie",
            serde_json::json!({ "url": url, "name": name, "value": value }),
        )
        .await;
    }

    /// A phone's screen: 390 × 844 CSS pixels, touch, mobile layout.
    async fn phone(&mut self) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            serde_json::json!({"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true}),
        )
        .await;
    }

    /// Screenshots the page as `name`, then asserts it has no sideways scroll on the
    /// 390 px screen `phone` set.
    async fn assert_fits_phone(&mut self, name: &str) {
        let width = self
            .eval("document.documentElement.scrollWidth")
            .await
            .as_i64()
            .unwrap_or(0);
        self.screenshot(name).await;
        assert!(
            width <= 390,
            "the page is {width} px wide on a 390 px phone"
        );
    }

    /// Uncaught script errors since the last `navigate`.
    fn exceptions(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e["method"] == "Runtime.exceptionThrown")
            .map(|e| e["params"]["exceptionDetails"].to_string())
            .collect()
    }

    async fn call(&mut self, method: &str, params: Value) -> Value {
        use futures_util::{SinkExt, StreamExt};
        self.next_id += 1;
        let id = self.next_id;
        let msg = serde_json::json!({"id": id, "method": method, "params": params});
        self.devtools
            .send(tokio_tungstenite::tungstenite::Message::Text(
                msg.to_string().into(),
            ))
            .await
            .expect("send to DevTools");
        while let Some(m) = self.devtools.next().await {
            if let Ok(tokio_tungstenite::tungstenite::Message::Text(t)) = m {
                let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
                if v["id"] == id {
                    return v["result"].clone();
                }
                if v.get("method").is_some() {
                    self.events.push(v);
                }
            }
        }
        panic!("DevTools closed")
    }

    async fn eval(&mut self, expression: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                serde_json::json!({"expression": expression, "returnByValue": true}),
            )
            .await;
        r["result"]["value"].clone()
    }

    async fn screenshot(&mut self, name: &str) {
        use base64::Engine;
        let r = self
            .call(
                "Page.captureScreenshot",
                serde_json::json!({"format": "png", "captureBeyondViewport": true}),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().expect("PNG data"))
            .expect("base64");
        let dir = common::repo_root().join("target/test-artifacts");
        std::fs::create_dir_all(&dir).expect("artifacts");
        std::fs::write(dir.join(name), &png).expect("write screenshot");
        assert!(png.len() > 10_000, "a screenshot of the page");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn free_form_speech_from_the_microphone_through_an_openai_compatible_endpoint() {
    // What the local engines' grammar cannot hear, through VOICE_ENGINE=openai and a double
    // of the audio API: the page's microphone (Chromium's fake one, playing espeak-ng's
    // recording) → the double's transcript → the tutor's answer, played a sentence at a time.
    let sentence = "I don't get why you flip the sign when you divide by a negative";
    let audio = fake_audio::FakeAudio::start(sentence).await;
    let stack = TutorStack::up_with(&format!(
        "      VOICE_ENGINE: openai\n      VOICE_BASE_URL: {}\n",
        audio.base_url
    ))
    .await;
    let (alice, base) = (&stack.alice, &stack.base);
    let (mut browser, _recording) = Browser::speaking(base, alice, sentence).await;
    browser
        .wait_until("document.body.dataset.voice === 'ended' || (document.body.dataset.voice || '').startsWith('error')")
        .await;
    let chat = browser
        .eval("document.getElementById('chat').innerText")
        .await;
    let chat = chat.as_str().unwrap_or("").to_string();
    browser.screenshot("learn-page-voice-free-form.png").await;
    assert_eq!(
        browser.eval("document.body.dataset.voice").await,
        "ended",
        "{chat}"
    );
    assert!(
        chat.contains(sentence),
        "the double's transcript shown: {chat}"
    );
    let answer = fake_model::answer_words("Linear equations").concat();
    assert!(chat.contains(answer.trim()), "the answer shown: {chat}");
    assert_eq!(
        browser.eval("document.body.dataset.played || ''").await,
        "2"
    );
    // The double was sent the page's recording as a WAV file of speech (over a second).
    let sent = audio.heard.transcriptions.lock().expect("lock")[0].clone();
    let file = sent.iter().find(|p| p.name == "file").expect("file part");
    assert!(
        file.data.starts_with(b"RIFF") && file.data.len() > 44 + 32_000,
        "{} bytes",
        file.data.len()
    );
    drop(browser);
    stack.down();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_shows_words_as_amazon_transcribe_hears_them() {
    // VOICE_ENGINE=aws against the Transcribe Streaming and Polly doubles: the page's
    // microphone streams to the service, which streams to "Transcribe" while the student
    // speaks; what has been heard so far shows in a provisional bubble, then the transcript
    // replaces it and the answer is played. The credentials come from the shell, as the
    // SDK's chain reads them (on ECS: the task role).
    let sentence = "I don't get why you flip the sign when you divide by a negative";
    let aws = fake_aws_speech::FakeAwsSpeech::start(sentence).await;
    let settings = aws.settings();
    let get = |k: &str| {
        settings
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let voice = format!(
        "      VOICE_ENGINE: aws\n      AWS_REGION: eu-west-1\n      AWS_ENDPOINT_URL_TRANSCRIBE_STREAMING: {}\n      AWS_ENDPOINT_URL_POLLY: {}\n      AWS_CA_BUNDLE: {}\n",
        get("AWS_ENDPOINT_URL_TRANSCRIBE_STREAMING"),
        get("AWS_ENDPOINT_URL_POLLY"),
        get("AWS_CA_BUNDLE"),
    );
    let (id, secret) = (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY"));
    let stack = TutorStack::up_with_env(
        &voice,
        &[
            ("AWS_ACCESS_KEY_ID", id.as_str()),
            ("AWS_SECRET_ACCESS_KEY", secret.as_str()),
        ],
    )
    .await;
    let (alice, base) = (&stack.alice, &stack.base);
    let (mut browser, _recording) = Browser::speaking(base, alice, sentence).await;
    // While listening, the provisional bubble holds the words heard so far.
    browser
        .wait_until("!!document.querySelector('#chat .msg.user.hearing')")
        .await;
    let hearing = browser
        .eval("document.querySelector('#chat .msg.user.hearing').innerText")
        .await;
    let hearing = hearing.as_str().unwrap_or("").to_string();
    assert!(
        !hearing.is_empty() && sentence.starts_with(&hearing),
        "{hearing}"
    );
    browser.screenshot("learn-page-voice-hearing.png").await;
    browser
        .wait_until("document.body.dataset.voice === 'ended' || (document.body.dataset.voice || '').startsWith('error')")
        .await;
    let chat = browser
        .eval("document.getElementById('chat').innerText")
        .await;
    let chat = chat.as_str().unwrap_or("").to_string();
    browser.screenshot("learn-page-voice-aws.png").await;
    assert_eq!(
        browser.eval("document.body.dataset.voice").await,
        "ended",
        "{chat}"
    );
    // One user bubble (the provisional one became the transcript), then the answer.
    assert_eq!(
        browser
            .eval("document.querySelectorAll('#chat .msg.user').length")
            .await,
        1,
        "{chat}"
    );
    assert_eq!(
        browser
            .eval("document.querySelectorAll('#chat .msg.hearing').length")
            .await,
        0
    );
    assert!(chat.contains(sentence), "{chat}");
    let answer = fake_model::answer_words("Linear equations").concat();
    assert!(chat.contains(answer.trim()), "the answer shown: {chat}");
    assert_eq!(
        browser.eval("document.body.dataset.played || ''").await,
        "2"
    );
    let streams = aws.seen.streams.lock().expect("lock").clone();
    assert!(
        streams.len() == 1 && streams[0].audio_bytes > 32_000 && streams[0].ended,
        "{streams:?}"
    );
    drop(browser);
    stack.down();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_student_asks_by_voice_in_the_browser_and_hears_the_answer() {
    let stack = TutorStack::up("local").await;
    let (alice, base, port) = (&stack.alice, &stack.base, stack.port);
    let (_, health) = get(&format!("{base}/api/LearnTrac/health"), None).await;
    assert!(health.contains("\"voice\":\"enabled\""), "{health}");

    // The WebSocket through the router, as a client speaks it.
    let dir = tempfile::tempdir().expect("dir");
    let wav = dir.path().join("question.wav");
    speech::say("how do i solve a linear equation", &wav, 1.0);
    let ws = format!("ws://127.0.0.1:{port}/api/voice/ws?concept=2");
    let mut socket = speech::connect(&ws, Some(alice))
        .await
        .expect("connect through the router");
    let reply = speech::ask(&mut socket, &speech::pcm_of(&wav)).await;
    let transcript = reply
        .of("transcript")
        .unwrap_or_else(|| panic!("{:?}", reply.events));
    assert_eq!(transcript["text"], "how do i solve a linear equation");
    assert!(
        reply.audio.as_ref().is_some_and(|a| a.starts_with(b"RIFF")),
        "{:?}",
        reply.events
    );
    drop(socket);

    // The page in a browser whose microphone plays the question once: it listens for four
    // seconds, shows what it heard and the tutor's answer, and plays the answer's audio.
    let url = format!("{base}/learn/?concept=2&listen=4#token={alice}");
    let mut browser = Browser::open(&url, Some(&wav)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut states = Vec::new();
    let last = loop {
        let state = browser.eval("document.body.dataset.voice || ''").await;
        let state = state.as_str().unwrap_or("").to_string();
        if states.last() != Some(&state) {
            states.push(state.clone());
        }
        if state == "ended" || state.starts_with("error") || std::time::Instant::now() > deadline {
            break state;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let chat = browser
        .eval("document.getElementById('chat').innerText")
        .await;
    let error = browser
        .eval("document.getElementById('chat-error').innerText")
        .await;
    browser.screenshot("learn-page-voice.png").await;
    assert_eq!(
        last, "ended",
        "the page went {states:?}; chat: {chat}; error: {error}"
    );
    assert!(
        states.contains(&"speaking".to_string()),
        "the answer played: {states:?}"
    );
    assert_eq!(
        browser.eval("document.body.dataset.played || ''").await,
        "2",
        "both sentences played, one after the other"
    );
    let chat = chat.as_str().unwrap_or("");
    assert!(
        chat.contains("how do i solve a linear equation"),
        "the transcript shown: {chat}"
    );
    let answer = fake_model::answer_words("Linear equations").concat();
    assert!(chat.contains(answer.trim()), "the answer shown: {chat}");
    drop(browser);

    stack.down();
}

/// The demo's passwords as `up --seed-demo` keeps them (`user role password` lines).
fn demo_passwords(data: &Path) -> std::collections::HashMap<String, String> {
    let text = std::fs::read_to_string(data.join("demo-accounts")).expect("demo-accounts");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 3).then(|| (f[0].to_string(), f[2].to_string()))
        })
        .collect()
}

/// A hidden field's value in one of Trac's forms.
/// The ticket a redirect after Trac's New Ticket form points at.
fn location_id(head: &str) -> i64 {
    head.lines()
        .filter_map(|l| {
            l.strip_prefix("Location: ")
                .or(l.strip_prefix("location: "))
        })
        .filter_map(|l| l.trim().rsplit('/').next()?.parse().ok())
        .next()
        .expect("the new ticket's location")
}

fn hidden(html: &str, name: &str) -> String {
    html.split(&format!("name=\"{name}\""))
        .nth(1)
        .and_then(|r| r.split("value=\"").nth(1))
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no {name} in the form"))
        .to_string()
}

/// A concept as the service reads it, asked with a Trac login cookie.
async fn concept_as(base: &str, cookie: &str, id: i64) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .get(format!("{base}/api/LearnTrac/concepts/{id}"))
        .header("cookie", format!("trac_auth={cookie}"))
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_school_signs_in_and_each_role_does_only_its_own() {
    use common::TracUser;
    let project = Project::new();
    let home = tempfile::tempdir().expect("home");
    let port = free_port();
    let child = up(project.path(), home.path(), port, true);
    let base = format!("http://127.0.0.1:{port}");
    let data = project.path().join(".learntrac/local/embedded");
    let pw = demo_passwords(&data);
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["demo-accounts", "trac.htdigest"] {
            let mode = std::fs::metadata(data.join(f))
                .expect(f)
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f} is private");
        }
    }

    // Trac's Login asks for a password (it answered 500 without accounts); a wrong one
    // gets no session; the demo's people sign in.
    let anonymous = TracUser::anonymous(&base);
    assert_eq!(anonymous.get("/login").0, 401);
    let wrong = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--digest",
            "-u",
        ])
        .arg("alice:not-her-password")
        .arg(format!("{base}/login"))
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&wrong.stdout), "401");
    let alice = TracUser::login(&base, "alice", &pw["alice"]);
    let carol = TracUser::login(&base, "carol", &pw["carol"]);
    let admin = TracUser::login(&base, "admin", &pw["admin"]);

    // Who reaches what: administration is the teacher's and the administrator's.
    // Trac answers 404 for an /admin its visitor has no panel of.
    assert!(
        matches!(alice.get("/admin").0, 403 | 404),
        "a student has no /admin"
    );
    assert!(
        matches!(carol.get("/admin").0, 200 | 303),
        "the teacher reaches /admin"
    );
    assert_eq!(admin.get("/admin/general/perm").0, 200);
    assert_eq!(anonymous.get("/newticket").0, 403);
    assert_eq!(
        alice.get("/newticket").0,
        403,
        "students do not file concepts"
    );
    let (s, teacher_form) = carol.get("/newticket");
    assert_eq!(s, 200);
    assert!(
        teacher_form.contains("action_create_and_assign_reassign_owner"),
        "the teacher's form assigns an owner"
    );

    // The service knows each by Trac's cookie.
    let (s, c1) = concept_as(&base, &alice.auth_cookie(), 1).await;
    assert_eq!((s, c1["owner"].as_str()), (200, Some("alice")), "{c1}");

    // As a student, through Trac's own forms, on bob's concept #4: every change refused.
    let (_, bobs) = carol.get("/ticket/4");
    let view_time = hidden(&bobs, "view_time");
    let attempts: &[(&str, &[(&str, &str)])] = &[
        (
            "reassign",
            &[
                ("action", "reassign"),
                ("action_reassign_reassign_owner", "alice"),
            ],
        ),
        ("master", &[("action", "master")]),
        (
            "summary",
            &[
                ("action", "leave"),
                ("field_summary", "Ignore previous instructions"),
            ],
        ),
        (
            "threshold",
            &[("action", "leave"), ("field_mastery_threshold", "0.01")],
        ),
        (
            "comment",
            &[("action", "leave"), ("comment", "alice-was-here")],
        ),
    ];
    for (what, fields) in attempts {
        let mut all = fields.to_vec();
        all.extend([
            ("view_time", view_time.as_str()),
            ("start_time", view_time.as_str()),
            ("submit", "Submit changes"),
        ]);
        let (status, _, body) = alice.form("/ticket/1", "/ticket/4", &all, None);
        assert_ne!(
            status, 303,
            "alice's {what} on bob's concept was saved: {body:.400}"
        );
    }
    let carol_cookie = carol.auth_cookie();
    let (_, c4) = concept_as(&base, &carol_cookie, 4).await;
    assert_eq!(c4["owner"], "bob", "{c4}");
    assert_eq!(c4["status"], "new", "{c4}");
    assert_eq!(c4["summary"], "Variables and expressions", "{c4}");
    assert_eq!(c4["mastery_threshold"], 0.8, "{c4}");
    assert!(!carol.get("/ticket/4").1.contains("alice-was-here"));
    // …and through the service's API: bob's concept is not hers to practise or see.
    let practise = reqwest::Client::new()
        .post(format!("{base}/api/LearnTrac/concepts/4/practice"))
        .header("cookie", format!("trac_auth={}", alice.auth_cookie()))
        .json(&serde_json::json!({"score": 1.0}))
        .send()
        .await
        .expect("practice");
    assert_eq!(practise.status().as_u16(), 404);

    // On her own concept she may comment.
    let (_, own) = alice.get("/ticket/1");
    let t = hidden(&own, "view_time");
    let (status, _, body) = alice.form(
        "/ticket/1",
        "/ticket/1",
        &[
            ("action", "leave"),
            ("comment", "I practised this twice"),
            ("view_time", &t),
            ("start_time", &t),
            ("submit", "Submit changes"),
        ],
        None,
    );
    assert_eq!(status, 303, "her comment on her own concept: {body:.400}");

    // As the teacher: a new concept for alice, its prerequisite named as people write it;
    // it is on her page at once (the service reads Trac's tables).
    // The teacher's New Ticket form, filled as she fills it: a summary, prerequisites and
    // the students it is assigned to.
    let new_concept = |summary: &str, prerequisites: &str, owners: &str| {
        carol.form(
            "/newticket",
            "/newticket",
            &[
                ("field_summary", summary),
                ("field_description", "Practise it until mastery."),
                ("field_type", "task"),
                ("field_milestone", "algebra-1"),
                ("field_prerequisite_concepts", prerequisites),
                ("field_mastery_threshold", "0.8"),
                ("action", "create_and_assign"),
                ("action_create_and_assign_reassign_owner", owners),
                ("submit", "Create ticket"),
            ],
            None,
        )
    };
    let (status, head, body) = new_concept("Fractions", "#1", "alice");
    assert_eq!(status, 303, "{head}\n{body:.600}");
    let id = location_id(&head);
    let (s, fresh) = concept_as(&base, &alice.auth_cookie(), id).await;
    assert_eq!(s, 200, "{fresh}");
    assert_eq!(fresh["owner"], "alice", "{fresh}");
    assert_eq!(fresh["prerequisites"], serde_json::json!([1]), "{fresh}");

    // Several students at once: one concept each. Prerequisites name a student's own
    // concepts, so bob's copy takes his "Variables and expressions" (#4) for alice's #1,
    // and leaves out "Limits" (alice's #6), which he does not have — and the teacher is told.
    let (status, head, body) = new_concept("Inequalities", "#1, #6", "alice, bob");
    assert_eq!(status, 303, "{head}\n{body:.600}");
    let first = location_id(&head);
    let (_, shown) = carol.get(&format!("/ticket/{first}"));
    let told = format!(
        "One concept each: #{first} for alice, #{} for bob.",
        first + 1
    );
    assert!(shown.contains(&told), "{told} in {shown:.3000}");
    let lacking = shown
        .split("bob has no concept named ")
        .nth(1)
        .unwrap_or_else(|| panic!("no notice of what bob lacks: {shown}"));
    assert!(
        lacking
            .chars()
            .take(40)
            .collect::<String>()
            .contains("Limits"),
        "{lacking:.200}"
    );
    for (id, owner, prerequisites) in [
        (first, "alice", serde_json::json!([1, 6])),
        (first + 1, "bob", serde_json::json!([4])),
    ] {
        let (s, c) = concept_as(&base, &carol.auth_cookie(), id).await;
        assert_eq!(s, 200, "{c}");
        assert_eq!(
            (&c["owner"], &c["summary"], &c["prerequisites"]),
            (
                &serde_json::json!(owner),
                &serde_json::json!("Inequalities"),
                &prerequisites
            ),
            "{c}"
        );
    }
    // Names as a hurried teacher types them: "bob," is bob (whose login the roles compare
    // exactly); "alice bob" is no login, and the form says how to write two.
    let (status, head, body) = new_concept("Graphs", "", "bob, ");
    assert_eq!(status, 303, "{head}\n{body:.600}");
    let (_, graphs) = concept_as(&base, &carol.auth_cookie(), location_id(&head)).await;
    assert_eq!(graphs["owner"], "bob", "{graphs}");
    let (status, _, body) = new_concept("Graphs", "", "alice bob");
    assert_eq!(status, 200, "the form again, nothing created");
    assert!(
        body.contains("Separate students with commas: &#34;alice bob&#34; is not one login.")
            || body.contains("Separate students with commas: \"alice bob\" is not one login."),
        "{body}"
    );
    // The picker's list of a student's concepts is the teacher's alone.
    let (s, listed) = carol.get("/teacher/concepts?owner=bob");
    assert_eq!(s, 200, "{listed}");
    let listed: Value = serde_json::from_str(&listed).expect("the concepts' JSON");
    assert!(
        listed["concepts"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["id"] == 4)),
        "{listed}"
    );
    assert_eq!(alice.get("/teacher/concepts?owner=bob").0, 403);
    assert_eq!(anonymous.get("/teacher/concepts?owner=bob").0, 403);

    // What the teacher and the administrator see, in a browser signed in by their cookies:
    // the teacher's New Ticket form assigns an owner and has no script error; the
    // administrator's permission page lists the teachers group.
    // The teacher's New Ticket form in a browser: assigning to alice and bob lists alice's concepts
    // to tick as prerequisites, and a tick writes the field Trac saves.
    let mut browser = Browser::open("about:blank", None).await;
    browser
        .set_cookie(&base, "trac_auth", &carol.auth_cookie())
        .await;
    browser.navigate(&format!("{base}/newticket")).await;
    browser
        .eval(
            "(() => { document.getElementById('action_create_and_assign').click(); \
             const a = document.getElementById('action_create_and_assign_reassign_owner'); \
             a.value = 'alice, bob'; a.dispatchEvent(new Event('input')); })()",
        )
        .await;
    browser
        .wait_until(
            "document.querySelectorAll('#prerequisite-picker input[value=\"2\"]').length == 1",
        )
        .await;
    browser
        .eval("document.querySelector('#prerequisite-picker input[value=\"2\"]').click()")
        .await;
    assert_eq!(
        browser
            .eval("document.getElementById('field-prerequisite_concepts').value")
            .await,
        Value::String("#2".into())
    );
    assert_eq!(
        browser
            .eval("document.getElementById('field-type').value")
            .await,
        Value::String("task".into()),
        "a concept is a task by default, not a defect"
    );
    let form = browser.eval("document.body.innerText").await;
    let form = form.as_str().unwrap_or("");
    for shows in [
        "each gets a concept of their own",
        "Prerequisites from alice's concepts (each student gets their own of the same name)",
        "#2 Linear equations",
    ] {
        assert!(form.contains(shows), "{shows}: {form}");
    }
    assert!(
        browser.exceptions().is_empty(),
        "/newticket threw: {:?}",
        browser.exceptions()
    );
    browser.screenshot("trac-teacher-newticket.png").await;
    drop(browser);

    for (who, path, shows, name) in [
        (
            &carol,
            "/query?status=!closed&group=owner",
            "Fractions",
            "trac-teacher-concepts-by-student.png",
        ),
        (
            &admin,
            "/admin/general/perm",
            "teachers",
            "trac-admin-permissions.png",
        ),
    ] {
        let mut browser = Browser::open("about:blank", None).await;
        browser
            .set_cookie(&base, "trac_auth", &who.auth_cookie())
            .await;
        browser.navigate(&format!("{base}{path}")).await;
        let text = browser.eval("document.body.innerText").await;
        assert!(
            text.as_str().unwrap_or("").contains(shows),
            "{path}: {text}"
        );
        assert!(
            browser.exceptions().is_empty(),
            "{path} threw: {:?}",
            browser.exceptions()
        );
        browser.screenshot(name).await;
    }

    // In a browser, signed in by Trac's cookie (no token): her page lists the new concept;
    // bob's concept is "not one of yours"; the tutor is off here and says so; /query loads
    // without a script error; a phone's screen has no sideways scroll.
    let mut browser = Browser::open("about:blank", None).await;
    browser
        .set_cookie(&base, "trac_auth", &alice.auth_cookie())
        .await;
    browser.phone().await;
    browser.navigate(&format!("{base}/learn/?concept=2")).await;
    browser
        .wait_until("document.getElementById('concept-title').textContent.includes('Linear')")
        .await;
    let page = browser.eval("document.body.innerText").await;
    let page = page.as_str().unwrap_or("").to_string();
    assert!(page.contains("signed in as alice"), "{page}");
    assert!(page.contains("Fractions"), "the new concept listed: {page}");
    assert!(
        page.contains("The tutor is not turned on here yet"),
        "{page}"
    );
    assert_eq!(
        browser
            .eval("document.getElementById('question').disabled")
            .await,
        Value::Bool(true)
    );
    browser.assert_fits_phone("learn-phone-concept.png").await;
    assert!(
        browser.exceptions().is_empty(),
        "{:?}",
        browser.exceptions()
    );

    browser.navigate(&format!("{base}/learn/?concept=4")).await;
    browser
        .wait_until("!document.getElementById('page-error').hidden")
        .await;
    let error = browser
        .eval("document.getElementById('page-error').innerText")
        .await;
    assert!(
        error
            .as_str()
            .unwrap_or("")
            .contains("#4 is not one of yours"),
        "{error}"
    );
    browser.screenshot("learn-phone-not-yours.png").await;

    browser.navigate(&format!("{base}/query")).await;
    let query = browser.eval("document.body.innerText").await;
    assert!(
        query.as_str().unwrap_or("").contains("Fractions"),
        "{query}"
    );
    assert!(
        browser.exceptions().is_empty(),
        "/query threw: {:?}",
        browser.exceptions()
    );
    drop(browser);

    // Logging out of Trac (its POST form) ends the sign-in everywhere: Trac offers Login
    // again, and the service stops taking her cookie once its few-second memory of checked
    // cookies has passed (SESSION_CACHE_MS).
    let cookie = alice.auth_cookie();
    let (status, head, body) = alice.form("/wiki/WikiStart", "/logout", &[], None);
    assert!(matches!(status, 302 | 303), "{head}{body:.500}");
    let (_, front) = alice.get("/wiki/WikiStart");
    assert!(front.contains("href=\"/login\""), "{front:.2000}");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (s, _) = concept_as(&base, &cookie, 1).await;
        if s == 401 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "her old cookie still answered {s} after logout"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // A damaged, an expired or a forged link says so, and the page keeps working (a fresh
    // browser: no Trac cookie). A token with a line break or a space once broke the
    // page's script (an invalid header value).
    let mut browser = Browser::open("about:blank", None).await;
    for (link, says) in [
        ("not-a-token", "damaged"),
        ("a.b%0Ac.d", "damaged"),
        ("%E0%A4%A", "damaged"),
        (
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IiLCJleHAiOjF9.c2lnbmF0dXJl",
            "expired or is not valid",
        ),
    ] {
        // From the second link on, a fragment change in the open page (hashchange).
        browser
            .eval("var e = document.getElementById('signin-error'); if (e) e.textContent = ''")
            .await;
        browser
            .navigate(&format!("{base}/learn/#token={link}"))
            .await;
        browser
            .wait_until("document.getElementById('signin-error').innerText.length > 0")
            .await;
        let said = browser
            .eval("document.getElementById('signin-error').innerText")
            .await;
        assert!(said.as_str().unwrap_or("").contains(says), "{link}: {said}");
        assert!(
            browser.exceptions().is_empty(),
            "{link}: {:?}",
            browser.exceptions()
        );
    }
    browser.screenshot("learn-bad-link.png").await;
    drop(browser);

    let down = learntrac(project.path(), home.path())
        .args(["local", "down"])
        .output()
        .expect("down");
    assert!(down.status.success());
    let out = child.wait_with_output().expect("up exits");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("/login as carol (teacher)"), "{stdout}");
    assert!(stdout.contains("chat tutor   off"), "{stdout}");
    assert!(
        stderr.contains(&pw["alice"]) || stdout.contains(&pw["alice"]),
        "the passwords are shown once"
    );
}
