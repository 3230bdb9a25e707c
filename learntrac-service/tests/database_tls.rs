//! The service binary against a PostgreSQL configured as RDS runs it (TLS required, a
//! server certificate from the test "RDS" CA), started the way the ECS task definition
//! starts it: DATABASE_HOST/PORT/NAME/USER/PASSWORD plus DATABASE_SSLMODE=verify-full and
//! DATABASE_SSLROOTCERT. Trusting the right CA it is healthy over TLS; trusting another CA,
//! or not asking for TLS, it refuses to start and says why.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{TOKEN_SECRET, call, pg_admin_url, sqlx_pg};

/// A password with every character a URL would mangle unencoded.
const PASSWORD: &str = "p@ss w/rd:1";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn peer(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is required (scripts/test sets it; or run under scripts/with-peers)")
    })
}

/// The test PostgreSQL's port, from its URL.
fn pg_port() -> String {
    let base = peer("LEARNTRAC_TEST_PG_BASE");
    base.rsplit(':').next().expect("port").to_string()
}

/// A role with a password and a database of its own, as RDS's master user has.
async fn database() -> (String, String) {
    let n = format!(
        "{}_{}",
        std::process::id(),
        Instant::now().elapsed().subsec_nanos()
    );
    let (role, db) = (format!("tls_role_{n}"), format!("tls_db_{n}"));
    let mut admin = sqlx_pg(&pg_admin_url()).await;
    for sql in [
        format!("CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'"),
        format!("CREATE DATABASE {db} OWNER {role}"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
            .expect("create role and database");
    }
    (role, db)
}

fn start(role: &str, db: &str, host: &str, tls: &[(&str, &str)], port: u16) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_learntrac-service"));
    cmd.env_clear()
        .env("DATABASE_HOST", host)
        .env("DATABASE_PORT", pg_port())
        .env("DATABASE_NAME", db)
        .env("DATABASE_USER", role)
        .env("DATABASE_PASSWORD", PASSWORD)
        .env("PORT", port.to_string())
        .env("LEARNTRAC_TOKEN_SECRET", TOKEN_SECRET)
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in tls {
        cmd.env(k, v);
    }
    cmd.spawn().expect("start the service")
}

/// The process's exit and what it wrote, within a deadline.
fn refused(mut child: Child) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let out = child.wait_with_output().expect("output");
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(!status.success(), "started although refused: {err}");
            return err;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the service neither started nor gave up within 30 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn verifies_the_database_certificate_against_the_configured_ca() {
    let (role, db) = database().await;
    let ca = peer("LEARNTRAC_TEST_CA");
    let other = peer("LEARNTRAC_TEST_OTHER_CA");

    // 1. verify-full against the CA that signed the server's certificate: healthy, and the
    //    server sees TLS on the service's connections.
    let port = free_port();
    let mut child = start(
        &role,
        &db,
        "localhost",
        &[
            ("DATABASE_SSLMODE", "verify-full"),
            ("DATABASE_SSLROOTCERT", &ca),
        ],
        port,
    );
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let health = loop {
        if client
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .await
            .is_ok()
        {
            break call(client.get(format!("http://127.0.0.1:{port}/health"))).await;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let out = child.wait_with_output().expect("output");
            panic!(
                "the service stopped ({status}): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(Instant::now() < deadline, "the service did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(health.0, 200, "{}", health.1);
    assert_eq!(health.1["status"], "healthy", "{}", health.1);
    let mut admin = sqlx_pg(&pg_admin_url()).await;
    let tls_connections: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
         WHERE usename = '{role}' AND ssl"
    )))
    .fetch_one(&mut admin)
    .await
    .expect("pg_stat_ssl");
    assert!(tls_connections >= 1, "the service's connections use TLS");
    let _ = child.kill();
    let _ = child.wait();

    // 2. A CA that did not sign the server's certificate: refused, and the reason says so.
    let err = refused(start(
        &role,
        &db,
        "localhost",
        &[
            ("DATABASE_SSLMODE", "verify-full"),
            ("DATABASE_SSLROOTCERT", &other),
        ],
        free_port(),
    ));
    assert!(
        err.contains("certificate") && err.contains(&other),
        "names the certificate problem and the CA file: {err}"
    );
    assert!(!err.contains(PASSWORD), "no password in the log: {err}");

    // 3. No TLS: the server refuses, as RDS with rds.force_ssl does.
    let err = refused(start(
        &role,
        &db,
        "localhost",
        &[("DATABASE_SSLMODE", "disable")],
        free_port(),
    ));
    assert!(err.contains("no encryption"), "{err}");
}
