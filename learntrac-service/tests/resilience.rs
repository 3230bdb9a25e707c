//! Failures of real peers mid-test: Redis stopped, PostgreSQL stopped, the pool exhausted,
//! SIGTERM with requests in flight.

mod common;

use std::time::{Duration, Instant};

use common::{
    App, AppOptions, PrivatePostgres, PrivateRedis, TracEnv, Who, call, standard_seed, trac_env_on,
};
use serde_json::json;

/// ElastiCache with AUTH: the token arrives as REDIS_AUTH_TOKEN beside a REDIS_URL without
/// one (as the task definition gives them); a wrong token leaves the cache down, and the
/// service serving from the database.
#[tokio::test(flavor = "multi_thread")]
async fn redis_auth_token_opens_the_cache_and_a_wrong_one_does_not() {
    let env = TracEnv::postgres().await;
    standard_seed(&env);
    let redis = PrivateRedis::start_with(&["--requirepass", "c0rrect-t0ken-0f-sixteen"]);
    for (token, cache) in [
        ("c0rrect-t0ken-0f-sixteen", "up"),
        ("wr0ng-t0ken-0f-sixteen", "down"),
    ] {
        let app = App::spawn_with(
            &env.database_url,
            AppOptions {
                redis: Some(redis.url.clone()),
                extra: vec![("REDIS_AUTH_TOKEN", token.to_string())],
                ..AppOptions::default()
            },
        )
        .await;
        let (s, b) = call(app.get("/api/LearnTrac/concepts/1", Who::Bearer("alice"))).await;
        assert_eq!(s, 200, "{token}: {b}");
        let (_, h) = call(app.get("/health", Who::Anonymous)).await;
        assert_eq!(h["checks"]["cache"]["status"], cache, "{token}: {h}");
        assert!(!h.to_string().contains(token), "{h}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_stopped_mid_test_degrades_the_cache_and_nothing_else() {
    let env = TracEnv::postgres().await;
    standard_seed(&env);
    let mut redis = PrivateRedis::start();
    let app = App::spawn_with(
        &env.database_url,
        AppOptions {
            redis: Some(redis.url.clone()),
            ..AppOptions::default()
        },
    )
    .await;
    let (s, _) = call(app.get("/api/LearnTrac/concepts/1", Who::Bearer("alice"))).await;
    assert_eq!(s, 200);
    let (_, h) = call(app.get("/health", Who::Anonymous)).await;
    assert_eq!(h["checks"]["cache"]["status"], "up");

    redis.stop();
    let started = Instant::now();
    for path in [
        "/api/LearnTrac/concepts/1",
        "/api/LearnTrac/concepts/2",
        "/api/LearnTrac/students/alice/progress",
    ] {
        let (s, b) = call(app.get(path, Who::Bearer("alice"))).await;
        assert_eq!(s, 200, "{path} answers from the database: {b}");
    }
    let (s, r) = call(
        app.post("/api/LearnTrac/concepts/2/practice", Who::Bearer("alice"))
            .json(&json!({"score": 0.95})),
    )
    .await;
    assert_eq!((s, r["status"].as_str()), (200, Some("mastered")), "{r}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "a dead cache costs little: {:?}",
        started.elapsed()
    );

    let (s, h) = call(app.get("/health", Who::Anonymous)).await;
    assert_eq!(s, 200, "{h}");
    assert_eq!(h["status"], "degraded");
    assert_eq!(h["checks"]["cache"]["status"], "down");
    assert_eq!(h["failing"], json!(["cache"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn database_stopped_mid_test_gives_503_quickly_and_recovers() {
    let pg = PrivatePostgres::start();
    let env = trac_env_on(&pg.admin_url).await;
    standard_seed(&env);
    let app = App::spawn_with(
        &env.database_url,
        AppOptions {
            redis: None,
            acquire_timeout_ms: 1000,
            ..AppOptions::default()
        },
    )
    .await;
    let (s, _) = call(app.get(
        "/api/LearnTrac/students/alice/progress",
        Who::Bearer("alice"),
    ))
    .await;
    assert_eq!(s, 200);

    pg.down();
    let started = Instant::now();
    let (s, b) = call(app.get(
        "/api/LearnTrac/students/alice/progress",
        Who::Bearer("alice"),
    ))
    .await;
    assert_eq!(s, 503, "{b}");
    assert_eq!(b["error"]["code"], "database_unavailable");
    let (s, h) = call(app.get("/health", Who::Anonymous)).await;
    assert_eq!(s, 503, "{h}");
    assert_eq!(h["failing"], json!(["database"]));
    assert_eq!(h["checks"]["database"]["status"], "down");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "bounded, not a hang: {:?}",
        started.elapsed()
    );

    pg.up();
    let mut recovered = false;
    for _ in 0..50 {
        if call(app.get(
            "/api/LearnTrac/students/alice/progress",
            Who::Bearer("alice"),
        ))
        .await
        .0 == 200
        {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "the service recovers when the database returns");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exhausted_pool_gives_503_within_the_acquire_timeout() {
    use sqlx::Connection;
    let env = TracEnv::postgres().await;
    standard_seed(&env);
    // One connection, so one stuck request exhausts the pool.
    let app = App::spawn_with(
        &env.database_url,
        AppOptions {
            redis: None,
            acquire_timeout_ms: 800,
            max_connections: Some(1),
            ..AppOptions::default()
        },
    )
    .await;
    // Warm the pool's only connection, then hold a lock that its next query waits on.
    call(app.get(
        "/api/LearnTrac/students/alice/progress",
        Who::Bearer("alice"),
    ))
    .await;
    let mut locker = common::sqlx_pg(&env.database_url).await;
    let mut tx = locker.begin().await.expect("begin");
    sqlx::query("LOCK TABLE ticket IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .expect("lock");

    let stuck = tokio::spawn({
        let rb = app.get(
            "/api/LearnTrac/students/alice/progress",
            Who::Bearer("alice"),
        );
        async move { call(rb).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let (s, b) = call(app.get("/api/LearnTrac/students/bob/progress", Who::Bearer("bob"))).await;
    assert_eq!(s, 503, "{b}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    tx.rollback().await.expect("unlock");
    let (s, _) = stuck.await.expect("join");
    assert_eq!(
        s, 200,
        "the waiting request completes once the lock is gone"
    );
}
