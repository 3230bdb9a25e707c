//! `learntrac-service db-roles` against PostgreSQL, with a master user made as RDS makes
//! it (CREATEROLE, owner of the database, not a superuser): each service gets its own role;
//! Trac creates its schema as its role, the service migrates and serves as its own, reads
//! and writes Trac's rows and cannot change Trac's tables; tables an earlier stack made as
//! the master user move to their role; runs are idempotent, safe side by side, and rotate
//! passwords.

mod common;

use common::{App, TracEnv, Who, call, pg_admin_url, sqlx_pg, unique, with_database, with_user};
use learntrac_service::db::roles::{Role, Roles, ensure};

/// A database owned by a fresh RDS-like master user; its URL as that user.
async fn rds_like() -> String {
    let admin = pg_admin_url();
    let (master, db) = (unique("master"), unique("rolesdb"));
    let mut conn = sqlx_pg(&admin).await;
    for statement in [
        format!("CREATE ROLE {master} LOGIN CREATEROLE PASSWORD 'master-pw'"),
        format!("CREATE DATABASE {db} OWNER {master}"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&mut conn)
            .await
            .expect("make the master user and its database");
    }
    with_user(&with_database(&admin, &db), &master, "master-pw")
}

fn roles(trac_pw: &str, service_pw: &str) -> Roles {
    let tag = unique("r");
    Roles {
        trac: Role {
            name: format!("trac_{tag}"),
            password: trac_pw.into(),
        },
        service: Role {
            name: format!("svc_{tag}"),
            password: service_pw.into(),
        },
    }
}

async fn try_sql(url: &str, statement: &str) -> Result<(), String> {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url)
        .await
        .map_err(|e| e.to_string())?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_string()))
        .execute(&mut conn)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

async fn owner(url: &str, table: &str) -> String {
    sqlx::query_scalar(
        "SELECT tableowner::text FROM pg_tables WHERE schemaname = 'public' AND tablename = $1",
    )
    .bind(table)
    .fetch_one(&mut sqlx_pg(url).await)
    .await
    .expect("owner")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_database_gets_a_role_per_service_that_can_do_only_its_work() {
    let master = rds_like().await;
    let r = roles("trac-pw: with @ and 'quote", "service pw/with:odd");
    // Every task runs it as it starts: two at once, and again later, change nothing.
    let (a, b) = tokio::join!(ensure(&master, &r), ensure(&master, &r));
    let created: Vec<String> = [a.expect("first"), b.expect("second")]
        .into_iter()
        .flat_map(|d| d.created)
        .collect();
    assert_eq!(created, vec![r.trac.name.clone(), r.service.name.clone()]);
    let again = ensure(&master, &r).await.expect("third");
    assert!(again.created.is_empty() && again.moved == 0, "{again:?}");

    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    let trac_url = with_user(&master, &r.trac.name, &enc(&r.trac.password));
    let service_url = with_user(&master, &r.service.name, &enc(&r.service.password));

    // Trac makes its schema as its own role (trac-admin initenv), then the service
    // migrates and serves as its own.
    let env = TracEnv::init(&trac_url, service_url.clone());
    common::standard_seed(&env);
    assert_eq!(owner(&master, "ticket").await, r.trac.name);
    let app = App::spawn(&service_url).await;
    let (s, b) = call(
        app.post("/api/LearnTrac/concepts/2/practice", Who::Bearer("alice"))
            .json(&serde_json::json!({"score": 0.9})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = call(app.get("/api/LearnTrac/concepts/1", Who::Bearer("alice"))).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(owner(&master, "learntrac_mastery").await, r.service.name);

    // The service writes Trac's rows, and may not change Trac's tables.
    try_sql(
        &service_url,
        "UPDATE ticket SET keywords = 'x' WHERE id = 1",
    )
    .await
    .expect("the service writes Trac's rows");
    for ddl in [
        "ALTER TABLE ticket ADD COLUMN sneaky integer",
        "DROP TABLE ticket_change",
        "CREATE ROLE escalated LOGIN",
    ] {
        let e = try_sql(&service_url, ddl).await.expect_err(ddl);
        assert!(
            e.contains("must be owner") || e.contains("permission denied"),
            "{ddl}: {e}"
        );
    }
    // A table Trac makes later (an upgrade, a plugin) is the service's to read and write.
    try_sql(
        &trac_url,
        "CREATE TABLE plugin_table (id serial PRIMARY KEY, v text)",
    )
    .await
    .expect("Trac creates tables");
    try_sql(&service_url, "INSERT INTO plugin_table (v) VALUES ('ok')")
        .await
        .expect("default privileges");
    // Trac's role has no business with the service's tables.
    let e = try_sql(&trac_url, "DELETE FROM learntrac_mastery")
        .await
        .expect_err("Trac on the service's tables");
    assert!(e.contains("permission denied"), "{e}");

    // A new password (rotated in SSM) is set by the next run; the old one stops working.
    let rotated = Roles {
        trac: Role {
            name: r.trac.name.clone(),
            password: r.trac.password.clone(),
        },
        service: Role {
            name: r.service.name.clone(),
            password: "rotated-service-pw".into(),
        },
    };
    ensure(&master, &rotated).await.expect("rotate");
    let e = try_sql(&service_url, "SELECT 1")
        .await
        .expect_err("old password");
    assert!(e.contains("password authentication failed"), "{e}");
    try_sql(
        &with_user(&master, &r.service.name, "rotated-service-pw"),
        "SELECT 1",
    )
    .await
    .expect("new password");
}

#[tokio::test(flavor = "multi_thread")]
async fn tables_an_earlier_stack_made_as_the_master_user_move_to_their_roles() {
    let master = rds_like().await;
    // As before per-service roles: Trac and the service both connected as the master.
    let env = TracEnv::init(&master, master.clone());
    common::standard_seed(&env);
    let app = App::spawn(&master).await;
    let (s, _) = call(
        app.post("/api/LearnTrac/concepts/2/practice", Who::Bearer("alice"))
            .json(&serde_json::json!({"score": 0.5})),
    )
    .await;
    assert_eq!(s, 200);
    drop(app);

    let r = roles("trac-pw", "service-pw");
    let done = ensure(&master, &r).await.expect("roles");
    assert!(done.moved > 10, "{done:?}");
    for (table, role) in [
        ("ticket", &r.trac.name),
        ("ticket_custom", &r.trac.name),
        ("system", &r.trac.name),
        ("learntrac_mastery", &r.service.name),
        ("learntrac_practice_attempt", &r.service.name),
        ("_sqlx_migrations", &r.service.name),
    ] {
        assert_eq!(&owner(&master, table).await, role, "{table}");
    }
    // The service, now as its role, migrates (nothing to do) and serves what it wrote.
    let service_url = with_user(&master, &r.service.name, "service-pw");
    let app = App::spawn(&service_url).await;
    let (s, b) = call(app.get(
        "/api/LearnTrac/students/alice/progress",
        Who::Bearer("alice"),
    ))
    .await;
    assert_eq!(s, 200, "{b}");
    assert!(b.to_string().contains("0.5"), "{b}");
}
