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

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_in_flight_requests_and_logs_json_with_request_ids() {
    use sqlx::Connection;
    let env = TracEnv::postgres().await;
    standard_seed(&env);
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_learntrac-service"))
        .env_clear()
        .env("DATABASE_URL", &env.database_url)
        .env("PORT", port.to_string())
        .env("LEARNTRAC_TOKEN_SECRET", TOKEN_SECRET)
        .env("LOG_FORMAT", "json")
        .env("DATABASE_MAX_CONNECTIONS", "30")
        .env("DATABASE_ACQUIRE_TIMEOUT_MS", "20000")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the service");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if client
            .get(format!("{base}/api/LearnTrac/health"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the service came up");

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
