//! The real `learntrac-service` binary: start-up errors, JSON logs, SIGTERM draining.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{TOKEN_SECRET, TracEnv, call, standard_seed};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Starts the binary with exactly `vars` (and PORT), its stderr captured, and waits until
/// it serves; returns it and its base URL.
async fn start(vars: &[(&str, &str)]) -> (std::process::Child, String) {
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_learntrac-service"))
        .env_clear()
        .envs(vars.iter().copied())
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the service");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if client
            .get(format!("{base}/api/LearnTrac/health"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return (child, base);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("reap");
    panic!(
        "the service did not come up: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_bad_setting_stops_start_up_naming_the_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_learntrac-service"))
        .env_clear()
        .env("DATABASE_URL", "sqlite://nowhere.db")
        .env("PORT", "eighty")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PORT: `eighty`"), "{err}");

    let out = Command::new(env!("CARGO_BIN_EXE_learntrac-service"))
        .env_clear()
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("DATABASE_HOST: not set"),
        "{out:?}"
    );
}

#[test]
fn an_unknown_command_is_refused_not_served() {
    // As an ECS `command` that repeats the image's entrypoint would pass it.
    let out = Command::new(env!("CARGO_BIN_EXE_learntrac-service"))
        .env_clear()
        .env("DATABASE_URL", "sqlite://nowhere.db")
        .args(["/usr/local/bin/learntrac-service", "db-roles"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown command `/usr/local/bin/learntrac-service`"),
        "{err}"
    );
    // db-roles names what it lacks.
    let out = Command::new(env!("CARGO_BIN_EXE_learntrac-service"))
        .env_clear()
        .env("DATABASE_URL", "sqlite://nowhere.db")
        .arg("db-roles")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("TRAC_DB_PASSWORD: not set"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_in_flight_requests_and_logs_json_with_request_ids() {
    use sqlx::Connection;
    let env = TracEnv::postgres().await;
    standard_seed(&env);
    let (child, base) = start(&[
        ("DATABASE_URL", &env.database_url),
        ("LEARNTRAC_TOKEN_SECRET", TOKEN_SECRET),
        ("LOG_FORMAT", "json"),
        ("DATABASE_MAX_CONNECTIONS", "30"),
        ("DATABASE_ACQUIRE_TIMEOUT_MS", "20000"),
    ])
    .await;
    let client = reqwest::Client::new();

    // Hold every request inside the database while SIGTERM arrives.
    let mut locker = common::sqlx_pg(&env.database_url).await;
    let mut tx = locker.begin().await.expect("begin");
    sqlx::query("LOCK TABLE ticket IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .expect("lock");
    let token = learntrac_service::auth::issue_token(TOKEN_SECRET, "alice", 600).expect("token");
    let requests: Vec<_> = (0..20)
        .map(|_| {
            let rb = client
                .get(format!("{base}/api/LearnTrac/students/alice/progress"))
                .bearer_auth(&token);
            tokio::spawn(async move { call(rb).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        client
            .get(format!("{base}/api/LearnTrac/health"))
            .send()
            .await
            .is_err(),
        "after SIGTERM no new connections are accepted"
    );
    tx.rollback().await.expect("unlock");

    for r in requests {
        let (status, body) = r.await.expect("join");
        assert_eq!(status, 200, "an in-flight request was lost: {body}");
    }
    let out = child.wait_with_output().expect("exit");
    assert!(out.status.success(), "clean exit after draining: {out:?}");
    let logs = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(!lines.is_empty(), "JSON log lines: {logs}");
    assert!(
        lines.iter().any(|l| l["span"]["request_id"]
            .as_str()
            .is_some_and(|id| id.len() >= 32)),
        "request ids in the logs: {logs}"
    );
    assert!(!logs.contains(TOKEN_SECRET), "no secret in the logs");
}

/// The tutor's logs say what happened, never the key, the student's words or the audio.
#[tokio::test(flavor = "multi_thread")]
async fn the_tutor_logs_no_key_no_question_and_no_audio() {
    use common::fake_model::FakeModel;
    let env = TracEnv::postgres().await;
    standard_seed(&env);
    let model = FakeModel::start().await;
    let key = "sk-live-7f3a9c-never-in-a-log";
    let path = std::env::var("PATH").unwrap_or_default();
    let (child, base) = start(&[
        ("PATH", &path),
        ("DATABASE_URL", &env.database_url),
        ("LEARNTRAC_TOKEN_SECRET", TOKEN_SECRET),
        ("LOG_FORMAT", "json"),
        ("CHAT_BASE_URL", &model.base_url),
        ("CHAT_MODEL", "tutor-model"),
        ("CHAT_API_KEY", key),
        ("VOICE_ENGINE", "local"),
    ])
    .await;
    let client = reqwest::Client::new();
    let token = learntrac_service::auth::issue_token(TOKEN_SECRET, "alice", 600).expect("token");
    let question = "my quokka-zebra question about equations";
    let body = client
        .post(format!("{base}/api/chat/concepts/2/messages"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"message": question}))
        .send()
        .await
        .expect("ask")
        .text()
        .await
        .expect("answer");
    assert!(body.contains("event: done"), "{body}");
    let failed = client
        .post(format!("{base}/api/chat/concepts/2/messages"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"message": "[500] quokka-zebra again"}))
        .send()
        .await
        .expect("ask")
        .text()
        .await
        .expect("answer");
    assert!(failed.contains("event: error"), "{failed}");
    // A spoken question, so the voice path has logged too.
    let dir = tempfile::tempdir().expect("dir");
    let wav = dir.path().join("q.wav");
    common::speech::say("how do i solve an equation", &wav, 0.3);
    let mut socket = common::speech::connect(
        &format!(
            "{}/api/voice/ws?concept=2",
            base.replace("http://", "ws://")
        ),
        Some(&token),
    )
    .await
    .expect("connect");
    let reply = common::speech::ask(&mut socket, &common::speech::pcm_of(&wav)).await;
    assert!(reply.audio.is_some(), "{:?}", reply.events);
    drop(socket);

    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().expect("exit");
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(
        logs.contains("tutor answered"),
        "the answer is logged as an event: {logs}"
    );
    assert!(
        logs.contains("tutor answer stopped"),
        "so is the failure: {logs}"
    );
    assert!(!logs.contains(key), "the model's key in the logs: {logs}");
    assert!(
        !logs.contains("quokka-zebra"),
        "the student's words in the logs: {logs}"
    );
    assert!(
        !logs.contains("linear equation") && !logs.contains("solve an equation"),
        "the transcript in the logs: {logs}"
    );
    assert!(
        !logs.contains("RIFF") && logs.lines().all(|l| l.len() < 4000),
        "audio in the logs"
    );
}
