//! The production Trac image, as production builds and starts it. The rendered Trac
//! Dockerfile (only `images.trac_base` swapped) is built by `learntrac build` on a stand-in
//! for python:2.7-slim-buster that fails apt as the real image does today (its sources
//! point at the archived buster), then started the ECS way — DATABASE_HOST/PORT/NAME/USER/
//! PASSWORD, DATABASE_SSLMODE=verify-full, DATABASE_SSLROOTCERT — against a PostgreSQL
//! that requires TLS as RDS does. The service and Trac 1.4.4 then make the same change
//! side by side, and Trac 1.4.4 reads back what the service wrote.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Cli, commit_all, free_port, peer, repo_root, write};
use serde_json::{Value, json};

/// The password the task gets from SSM, with every character a URL would mangle.
const PASSWORD: &str = "p@ss w/rd:1";
/// The service's own role's, and the master user's (RDS's; only db-roles uses it).
const SERVICE_PASSWORD: &str = "svc p@ss/1";
const MASTER_PASSWORD: &str = "master-pw";
const TOKEN_SECRET: &str = "trac-image-test-secret-of-32-characters!";
const CA_PATH: &str = "/etc/ssl/certs/rds-ca-bundle.pem";

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("run docker")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Where tests leave what a person may want to read afterwards.
fn artifacts() -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| repo_root().join("target"), PathBuf::from)
        .join("test-artifacts");
    std::fs::create_dir_all(&dir).expect("artifacts folder");
    dir
}

/// A project holding the repository's trac-legacy/ and local.yaml with the stand-in base
/// and the test CA in place of AWS's RDS bundle.
fn project(name: &str) -> tempfile::TempDir {
    let base = peer(
        "LEARNTRAC_TEST_PY27_IMAGE",
        "the python:2.7-slim-buster stand-in",
    );
    let ca_url = peer("LEARNTRAC_TEST_CA_URL", "the test RDS CA served over HTTP");
    let dir = tempfile::tempdir().expect("temp dir");
    let local =
        std::fs::read_to_string(repo_root().join("environments/local.yaml")).expect("local.yaml");
    let yaml = local
        .replace("project: learntrac", &format!("project: {name}"))
        .replace("python:2.7-slim-buster", &base)
        .replace(
            "  backup_retention_days: 0\n",
            &format!("  backup_retention_days: 0\n  ca_bundle_url: {ca_url}\n"),
        );
    assert!(yaml.contains(&ca_url), "local.yaml changed shape: {yaml}");
    write(dir.path(), "environments/local.yaml", &yaml);
    write(dir.path(), ".gitignore", ".learntrac/\n");
    common::copy_trac_legacy(dir.path());
    commit_all(dir.path(), "trac image");
    dir
}

/// Removes the image and containers a test made, whatever happened.
struct Cleanup(Vec<Vec<String>>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for args in self.0.iter().rev() {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let _ = docker(&args);
        }
    }
}

/// The ECS task's environment, pointed at the test PostgreSQL.
fn pg_port() -> String {
    peer("LEARNTRAC_TEST_PG_BASE", "PostgreSQL")
        .rsplit(':')
        .next()
        .expect("port")
        .to_string()
}

/// A TLS (verify-full) URL of the test PostgreSQL as `user`.
fn pg_url(user: &str, password: &str, db: &str) -> String {
    let enc: String = password
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!(
        "postgres://{user}:{enc}@localhost:{}/{db}?sslmode=verify-full&sslrootcert={}",
        pg_port(),
        peer("LEARNTRAC_TEST_CA", "the test CA").replace('/', "%2F"),
    )
}

/// What each task's db-roles container does before Trac or the service connects: their
/// own roles, made with the master user.
async fn db_roles(master: &str, db: &str, trac: &str, service: &str) {
    use learntrac_service::db::roles::{Role, Roles, ensure};
    let roles = Roles {
        trac: Role {
            name: trac.into(),
            password: PASSWORD.into(),
        },
        service: Role {
            name: service.into(),
            password: SERVICE_PASSWORD.into(),
        },
    };
    ensure(&pg_url(master, MASTER_PASSWORD, db), &roles)
        .await
        .expect("db-roles");
}

fn ecs_env(role: &str, db: &str, port: u16, rootcert: &str) -> Vec<String> {
    [
        "DATABASE_HOST=localhost".to_string(),
        format!("DATABASE_PORT={}", pg_port()),
        format!("DATABASE_NAME={db}"),
        format!("DATABASE_USER={role}"),
        format!("DATABASE_PASSWORD={PASSWORD}"),
        "DATABASE_SSLMODE=verify-full".to_string(),
        format!("DATABASE_SSLROOTCERT={rootcert}"),
        format!("PORT={port}"),
    ]
    .into_iter()
    .flat_map(|e| ["-e".to_string(), e])
    .collect()
}

async fn admin() -> sqlx::AnyConnection {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    sqlx::AnyConnection::connect(&peer("LEARNTRAC_TEST_PG", "PostgreSQL"))
        .await
        .expect("connect to the test PostgreSQL")
}

async fn sql(conn: &mut sqlx::AnyConnection, statement: String) {
    sqlx::query(sqlx::AssertSqlSafe(statement))
        .execute(conn)
        .await
        .expect("admin statement");
}

fn get(port: u16, path: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10", "-w", "\n%{http_code}"])
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .expect("curl");
    let t = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = t.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// trac_helper.py run by Trac 1.4.4 on Python 2.7 inside the running container.
fn trac_1_4(container: &str, args: &[&str], stdin: Option<&Value>) -> Value {
    use std::io::Write;
    let mut child = Command::new("docker")
        .args([
            "exec",
            "-i",
            "-e",
            "PGSSLMODE=verify-full",
            "-e",
            &format!("PGSSLROOTCERT={CA_PATH}"),
            // trac.ini names no password: a process run in the task passes it as libpq's
            // (docs/operations.md), as tracd has it.
            "-e",
            &format!("PGPASSWORD={PASSWORD}"),
            container,
            "python",
            "/tmp/trac_helper.py",
            args[0],
            "/var/trac/projects",
        ])
        .args(&args[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("docker exec");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(v) = stdin {
        input.write_all(v.to_string().as_bytes()).expect("write");
    }
    drop(input);
    let out = child.wait_with_output().expect("docker exec");
    assert!(out.status.success(), "trac_helper {args:?}: {}", text(&out));
    serde_json::from_slice(&out.stdout).expect("helper JSON")
}

/// Field, old, new, author of each change, in field order.
fn changes(ticket: &Value) -> Vec<(String, Value, Value, String)> {
    let mut log: Vec<_> = ticket["changelog"]
        .as_array()
        .expect("changelog")
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap_or("").to_string(),
                e["old"].clone(),
                e["new"].clone(),
                e["author"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    log.sort_by(|a, b| a.0.cmp(&b.0));
    log
}

#[tokio::test(flavor = "multi_thread")]
async fn the_production_trac_image_builds_without_apt_and_serves_trac_1_4_over_verified_tls() {
    let name = format!("ti{}", std::process::id() % 100_000);
    let image = format!("{name}-local-trac:local");
    let container = format!("{name}-trac");
    let mut cleanup = Cleanup(vec![vec!["rm".into(), "-f".into(), container.clone()]]);

    // 0. The stand-in fails apt as python:2.7-slim-buster does today.
    let base = peer(
        "LEARNTRAC_TEST_PY27_IMAGE",
        "the python:2.7-slim-buster stand-in",
    );
    let apt = docker(&["run", "--rm", &base, "apt-get", "update"]);
    assert!(
        !apt.status.success() && text(&apt).contains("does not have a Release file"),
        "the stand-in must fail apt as the archived buster does: {}",
        text(&apt)
    );

    // 1. The rendered production Dockerfile builds on it.
    let dir = project(&name);
    let build = Cli::new()
        .root(dir.path())
        .args(["build", "local", "--only", "trac"])
        .env("CI", "true")
        .run();
    let log = format!("{}{}", build.stdout, build.stderr);
    std::fs::write(artifacts().join("trac-image-build.log"), &log).expect("artifact");
    assert_eq!(build.code, 0, "{log}");
    assert!(!log.contains("apt-get"), "no apt in the Trac image: {log}");
    let inspect = docker(&["image", "inspect", &image, "--format", "{{json .Config}}"]);
    let config: Value = serde_json::from_slice(&inspect.stdout).expect("image config");
    // By id: the build tagged it with the commit as well. Removed after the container.
    let id = text(&docker(&[
        "image", "inspect", &image, "--format", "{{.Id}}",
    ]));
    cleanup.0.insert(
        0,
        vec![
            "rmi".into(),
            "-f".into(),
            "--no-prune".into(),
            id.trim().to_string(),
        ],
    );
    assert_eq!(config["User"], "10001:10001", "non-root");
    assert!(config["Healthcheck"]["Test"].is_array(), "{config}");
    let gcc = docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "sh",
        &image,
        "-c",
        "command -v gcc cc || echo none",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&gcc.stdout).trim(),
        "none",
        "no compiler"
    );

    // 2. Started the ECS way on a TLS-only PostgreSQL: creates Trac 1.4.4's schema (45).
    let mut conn = admin().await;
    // As in RDS: a master user (CREATEROLE, not a superuser) owns the database; Trac and
    // the service each log in as their own role, made by db-roles.
    let (role, svc_role, master) = (
        format!("{name}_trac"),
        format!("{name}_svc"),
        format!("{name}_master"),
    );
    let (db, db2) = (format!("{name}_db"), format!("{name}_db2"));
    for d in [&db, &db2] {
        sql(&mut conn, format!("DROP DATABASE IF EXISTS {d}")).await;
    }
    for r in [&role, &svc_role, &master] {
        sql(&mut conn, format!("DROP ROLE IF EXISTS {r}")).await;
    }
    sql(
        &mut conn,
        format!("CREATE ROLE {master} LOGIN CREATEROLE PASSWORD '{MASTER_PASSWORD}'"),
    )
    .await;
    sql(&mut conn, format!("CREATE DATABASE {db} OWNER {master}")).await;
    db_roles(&master, &db, &role, &svc_role).await;
    let port = free_port();
    // Logins as bootstrap makes them: the first line is the administrator's.
    let mut env = ecs_env(&role, &db, port, CA_PATH);
    env.extend([
        "-e".to_string(),
        format!(
            "TRAC_HTDIGEST={}\n{}",
            learntrac::bootstrap::htdigest("admin", "admin-pw"),
            learntrac::bootstrap::htdigest("alice", "alice-pw")
        ),
    ]);
    start_trac(&container, &image, &[], env);
    wait_for_trac(port, &container).await;
    let (_, page) = get(port, "/wiki/WikiStart");
    assert!(page.contains("Trac 1.4.4"), "Trac 1.4.4's page: {page}");
    // Roles on Trac 1.4.4 (Python 2.7): the administrator reaches the permission page, a
    // student files nothing and administers nothing; /query loads its batch-modify script
    // for her too (without it the page throws a script error).
    let base = format!("http://127.0.0.1:{port}");
    let administrator = common::TracUser::login(&base, "admin", "admin-pw");
    assert_eq!(administrator.get("/admin/general/perm").0, 200);
    let student = common::TracUser::login(&base, "alice", "alice-pw");
    assert_eq!(student.get("/newticket").0, 403);
    assert!(matches!(student.get("/admin").0, 403 | 404));
    let (s, query) = student.get("/query");
    assert_eq!(s, 200);
    // Trac 1.4.4 (measured: no auto_preview.js for a student) — the script is needed only
    // where the page carries the batch-modify form, as Trac 1.6's does for everyone.
    if query.contains("batchmod") {
        assert!(query.contains("auto_preview.js"), "{query:.2000}");
    }
    let logs = text(&docker(&["logs", &container]));
    std::fs::write(artifacts().join("trac-image-start.log"), &logs).expect("artifact");
    assert!(logs.contains("environment startup [Trac 1.4.4]"), "{logs}");
    assert!(
        !logs.contains("Traceback"),
        "start-up without tracebacks:\n{logs}"
    );
    assert!(!logs.contains(PASSWORD), "no password in Trac's log");
    // Nor in trac.ini, which lives on EFS (and in its backups) in AWS.
    let ini = text(&docker(&[
        "exec",
        &container,
        "cat",
        "/var/trac/projects/conf/trac.ini",
    ]));
    let database = ini
        .lines()
        .find(|l| l.starts_with("database = "))
        .unwrap_or_default();
    assert_eq!(
        database,
        format!("database = postgres://{role}@localhost:{}/{db}", pg_port()),
        "{ini}"
    );
    assert!(!ini.contains("p%40ss") && !ini.contains(PASSWORD), "{ini}");
    let tls_url = format!(
        "{}/{db}?{}",
        peer("LEARNTRAC_TEST_PG_BASE", "PostgreSQL"),
        peer("LEARNTRAC_TEST_PG_TLS", "PostgreSQL")
    );
    let version: String =
        sqlx::query_scalar("SELECT value FROM system WHERE name = 'database_version'")
            .fetch_one(&mut {
                use sqlx::Connection;
                sqlx::AnyConnection::connect(&tls_url)
                    .await
                    .expect("connect")
            })
            .await
            .expect("Trac's schema version");
    assert_eq!(version, "45");
    let tls: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE usename = '{role}' AND NOT ssl"
    )))
    .fetch_one(&mut conn)
    .await
    .expect("pg_stat_ssl");
    assert_eq!(tls, 0, "every connection of Trac's is TLS");

    // 3. The same image trusting another CA refuses the database, saying why.
    let other = peer("LEARNTRAC_TEST_OTHER_CA", "a second test CA");
    let mut refused = vec![
        "run".to_string(),
        "--rm".into(),
        "--network".into(),
        "host".into(),
        "-v".into(),
        format!("{other}:/other-ca.pem:ro"),
    ];
    refused.extend(ecs_env(&role, &db, free_port(), "/other-ca.pem"));
    refused.push(image.clone());
    let out = docker(&refused.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!out.status.success(), "started against an untrusted server");
    assert!(
        text(&out).contains("certificate verify failed"),
        "{}",
        text(&out)
    );

    // 4. Twin tickets: the service's change and Trac 1.4.4's own Ticket.save_changes.
    let helper = repo_root().join("learntrac-service/tests/trac_helper.py");
    let cp = docker(&[
        "cp",
        &helper.to_string_lossy(),
        &format!("{container}:/tmp/trac_helper.py"),
    ]);
    assert!(cp.status.success(), "{}", text(&cp));
    let seeded = trac_1_4(
        &container,
        &["seed"],
        Some(&json!({"milestones": ["algebra"], "tickets": [
            {"summary": "twin", "owner": "alice"},
            {"summary": "twin", "owner": "alice"},
            {"summary": "Variables", "owner": "alice", "milestone": "algebra",
             "custom": {"mastery_threshold": "0.8"}}
        ]})),
    );
    let ids: Vec<i64> = seeded["tickets"]
        .as_array()
        .expect("ids")
        .iter()
        .filter_map(Value::as_i64)
        .collect();
    let service_url = pg_url(&svc_role, SERVICE_PASSWORD, &db);
    {
        use learntrac_service::db::Db;
        use learntrac_service::trac::{LearningChange, update_learning_status};
        let db = Db::connect_lazy(&service_url, 2, Duration::from_secs(5)).expect("pool");
        let mut c = db.pool.acquire().await.expect("connection");
        let custom = [
            ("mastery_threshold", "0.9".to_string()),
            ("learning_difficulty", "4.0".to_string()),
        ];
        update_learning_status(
            &mut c,
            db.backend,
            &LearningChange {
                ticket: ids[0],
                author: "teacher",
                status: Some("accepted"),
                custom: &custom,
                comment: "tuned",
            },
        )
        .await
        .expect("the service's change")
        .expect("a change");
    }
    trac_1_4(
        &container,
        &["change", &ids[1].to_string()],
        Some(&json!({"author": "teacher", "comment": "tuned", "fields": {
            "status": "accepted", "mastery_threshold": "0.9", "learning_difficulty": "4.0"
        }})),
    );
    let ours = trac_1_4(&container, &["read", &ids[0].to_string()], None);
    let theirs = trac_1_4(&container, &["read", &ids[1].to_string()], None);
    assert_eq!(
        changes(&ours),
        changes(&theirs),
        "ours:\n{ours:#}\nTrac 1.4.4's:\n{theirs:#}"
    );
    for field in ["status", "mastery_threshold", "learning_difficulty"] {
        assert_eq!(ours["values"][field], theirs["values"][field], "{field}");
    }

    // 5. Practice through the API until mastered; Trac 1.4.4 reads the change back.
    let config = learntrac_service::Config::from_vars(
        &[
            ("DATABASE_HOST", "localhost".to_string()),
            (
                "DATABASE_PORT",
                peer("LEARNTRAC_TEST_PG_BASE", "PostgreSQL")
                    .rsplit(':')
                    .next()
                    .expect("port")
                    .to_string(),
            ),
            ("DATABASE_NAME", db.clone()),
            ("DATABASE_USER", svc_role.clone()),
            ("DATABASE_PASSWORD", SERVICE_PASSWORD.to_string()),
            ("DATABASE_SSLMODE", "verify-full".to_string()),
            (
                "DATABASE_SSLROOTCERT",
                peer("LEARNTRAC_TEST_CA", "the test CA"),
            ),
            ("LEARNTRAC_TOKEN_SECRET", TOKEN_SECRET.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
    )
    .expect("the service's configuration");
    let state = learntrac_service::build_state(&config)
        .await
        .expect("the service starts on the TLS-only database");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let api = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(learntrac_service::serve(
        listener,
        learntrac_service::router(state, learntrac_service::Limits::from(&config)),
        std::future::pending(),
    ));
    let token = learntrac_service::auth::issue_token(TOKEN_SECRET, "alice", 600).expect("token");
    let client = reqwest::Client::new();
    let concept = ids[2];
    let mut answers = Vec::new();
    for _ in 0..5 {
        let r: Value = client
            .post(format!("{api}/api/LearnTrac/concepts/{concept}/practice"))
            .bearer_auth(&token)
            .json(&json!({"score": 0.9}))
            .send()
            .await
            .expect("practice")
            .json()
            .await
            .expect("practice JSON");
        answers.push(r.clone());
        if r["status_changed"] == true {
            break;
        }
    }
    server.abort();
    let last = answers.last().expect("an answer");
    assert_eq!(last["status"], "mastered", "{answers:#?}");
    let read = trac_1_4(&container, &["read", &concept.to_string()], None);
    std::fs::write(
        artifacts().join("trac-1.4.4-reads-mastered.json"),
        serde_json::to_string_pretty(&json!({"practice": answers, "trac_1_4_4_read": read}))
            .unwrap_or_default(),
    )
    .expect("artifact");
    assert_eq!(read["values"]["status"], "mastered", "{read:#}");
    assert!(
        changes(&read)
            .iter()
            .any(|(f, old, new, _)| f == "status" && old == "new" && new == "mastered"),
        "Trac 1.4.4 sees the status change: {read:#}"
    );
    let (code, page) = student.get(&format!("/ticket/{concept}"));
    assert_eq!(code, 200);
    assert!(page.contains("mastered"), "tracd shows the change: {page}");
    // …to people signed in: a visitor who is not sees no concept (names are on it).
    for path in [
        format!("/ticket/{concept}"),
        "/query".into(),
        "/report/1".into(),
    ] {
        assert_eq!(
            get(port, &path).0,
            403,
            "{path} for a visitor not signed in"
        );
    }

    // 6. Behind the load balancer's TLS: with the task's TRAC_BASE_URL, the administrator
    //    (bootstrap's --trac-admin: the first htdigest line, TRAC_ADMIN from the first
    //    start) signs in, and creating a ticket through Trac's form redirects to an
    //    https:// URL of the environment's domain; Trac's cookies carry Secure. (Plain HTTP
    //    above kept working without it.)
    let admin = Command::new("docker")
        .args([
            "exec",
            "-e",
            "PGSSLMODE=verify-full",
            "-e",
            &format!("PGSSLROOTCERT={CA_PATH}"),
            // trac.ini names no password: a process run in the task passes it as libpq's
            // (docs/operations.md), as tracd has it.
            "-e",
            &format!("PGPASSWORD={PASSWORD}"),
            &container,
            "trac-admin",
            "/var/trac/projects",
            "permission",
            "list",
            "admin",
        ])
        .output()
        .expect("trac-admin");
    assert!(
        admin.status.success() && text(&admin).contains("TRAC_ADMIN"),
        "{}",
        text(&admin)
    );
    let tls_port = free_port();
    let tls_container = format!("{container}-tls");
    cleanup
        .0
        .insert(1, vec!["rm".into(), "-f".into(), tls_container.clone()]);
    let mut tls_env = ecs_env(&role, &db, tls_port, CA_PATH);
    tls_env.extend([
        "-e".to_string(),
        format!(
            "TRAC_HTDIGEST={}",
            learntrac::bootstrap::htdigest("admin", "admin-pw")
        ),
    ]);
    start_trac(
        &tls_container,
        &image,
        &["-e", "TRAC_BASE_URL=https://learn.example.edu"],
        tls_env,
    );
    wait_for_trac(tls_port, &tls_container).await;
    let base = format!("http://127.0.0.1:{tls_port}");
    let administrator = common::TracUser::login(&base, "admin", "admin-pw");
    assert!(
        administrator.cookie_is_secure("trac_auth"),
        "the login cookie carries Secure"
    );
    let (status, head, body) = administrator.form(
        "/newticket",
        "/newticket",
        &[
            ("field_summary", "Filed behind TLS"),
            ("field_type", "task"),
            ("submit", "Create ticket"),
        ],
        None,
    );
    assert_eq!(status, 303, "{head}{body}");
    let location = head
        .lines()
        .rev()
        .find_map(|l| {
            l.strip_prefix("Location: ")
                .or_else(|| l.strip_prefix("location: "))
        })
        .unwrap_or_default()
        .trim();
    assert!(
        location.starts_with("https://learn.example.edu/ticket/"),
        "redirect to the public HTTPS URL: {head}"
    );
    let cookies: Vec<&str> = head
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .collect();
    assert!(
        cookies
            .iter()
            .all(|c| c.to_ascii_lowercase().contains("; secure")),
        "Trac's cookies carry Secure: {cookies:?}"
    );

    // 7. Two tasks starting at once on one shared environment (EFS) and a fresh database:
    //    one creates it, the other waits and attaches; both serve.
    sql(&mut conn, format!("CREATE DATABASE {db2} OWNER {master}")).await;
    db_roles(&master, &db2, &role, &svc_role).await;
    let volume = format!("{name}-shared-env");
    cleanup.0.insert(
        1,
        vec!["volume".into(), "rm".into(), "-f".into(), volume.clone()],
    );
    let mut twins = Vec::new();
    for i in 0..2 {
        let twin = format!("{container}-twin{i}");
        // Removed before the volume they share (the list is undone from its end).
        cleanup.0.push(vec!["rm".into(), "-f".into(), twin.clone()]);
        let p = free_port();
        let shared = format!("{volume}:/var/trac/projects");
        start_trac(
            &twin,
            &image,
            &["-v", &shared],
            ecs_env(&role, &db2, p, CA_PATH),
        );
        twins.push((twin, p));
    }
    let mut created = 0;
    for (twin, p) in &twins {
        wait_for_trac(*p, twin).await;
        let logs = text(&docker(&["logs", twin]));
        assert!(!logs.contains("Traceback"), "{twin}:\n{logs}");
        created += usize::from(logs.contains("creating Trac environment"));
    }
    assert_eq!(created, 1, "exactly one task created the environment");
}

/// Starts the image as a detached container on the host network with the task's
/// environment (`-e` pairs) and any `extra` docker-run arguments.
fn start_trac(container: &str, image: &str, extra: &[&str], env: Vec<String>) {
    let mut run: Vec<String> = ["run", "-d", "--name", container, "--network", "host"]
        .iter()
        .chain(extra)
        .map(|a| a.to_string())
        .collect();
    run.extend(env);
    run.push(image.to_string());
    let started = docker(&run.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(started.status.success(), "{}", text(&started));
}

/// Waits until a Trac container serves its front page; its log when it stops or times out.
async fn wait_for_trac(port: u16, container: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if get(port, "/wiki/WikiStart").0 == 200 {
            return;
        }
        let state = docker(&["inspect", container, "--format", "{{.State.Running}}"]);
        let logs = text(&docker(&["logs", container]));
        assert!(
            String::from_utf8_lossy(&state.stdout).trim() == "true",
            "{container} stopped:\n{logs}"
        );
        assert!(
            Instant::now() < deadline,
            "{container} did not serve within 120 s:\n{logs}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
