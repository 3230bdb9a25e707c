//! `learntrac local` with the embedded runtime, on a machine state with no Docker socket.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Project, free_port};
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

/// Starts `local up` and waits until the router answers.
fn up(dir: &Path, home: &Path, port: u16, seed: bool) -> Child {
    let mut cmd = learntrac(dir, home);
    cmd.args(["local", "up", "--port", &port.to_string()]);
    if seed {
        cmd.arg("--seed-demo");
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("local up");
    let healthy = (0..200).any(|_| {
        let ok = learntrac_service::healthcheck::probe(port, Duration::from_millis(500)).is_ok();
        if !ok {
            std::thread::sleep(Duration::from_millis(50));
        }
        ok
    });
    if !healthy {
        let _ = child.kill();
        let out = child.wait_with_output().expect("reap");
        panic!(
            "local up did not become healthy on {port}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    child
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
    // A rule for trac reaches Trac's place, which says why it is absent.
    let (s, body) = get(&format!("{base}/wiki/WikiStart"), None).await;
    assert_eq!(s, 503);
    assert!(body.contains("Docker runtime"), "{body}");
    // LearnTrac's paths are the service's, whatever they end in.
    let (s, body) = get(&format!("{base}/api/LearnTrac/app.js"), None).await;
    assert_eq!(s, 404, "{body}");
    assert!(
        body.contains("not_found"),
        "the service's JSON error: {body}"
    );
    // No rule: the listener's default, Trac.
    assert_eq!(get(&format!("{base}/nowhere"), None).await.0, 503);

    let ps = learntrac(project.path(), home.path())
        .args(["local", "ps", "-o", "json"])
        .output()
        .expect("ps");
    let ps: Value = serde_json::from_slice(&ps.stdout).expect("ps JSON");
    assert_eq!(ps["runtime"], "embedded");
    assert_eq!(ps["components"][0]["health"], "healthy", "{ps}");

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
