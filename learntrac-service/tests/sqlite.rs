//! SQLite, Trac's default backend (used by `learntrac local up` without Docker): the same
//! behaviour, read back through Trac's own code.

mod common;

use common::{App, AppOptions, TracEnv, Who, call, standard_seed};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn the_service_on_a_sqlite_trac_environment() {
    let env = TracEnv::sqlite();
    standard_seed(&env);
    let app = App::spawn_with(
        &env.database_url,
        AppOptions {
            redis: None,
            ..AppOptions::default()
        },
    )
    .await;

    let (s, h) = call(app.get("/health", Who::Anonymous)).await;
    assert_eq!(s, 200, "{h}");
    assert_eq!(h["checks"]["database"]["backend"], "sqlite");
    assert_eq!(h["checks"]["cache"]["status"], "local");

    let (s, c) = call(app.get("/api/LearnTrac/concepts/2", Who::Cookie("alice-cookie"))).await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["mastery_threshold"], 0.7);
    let (s, r) = call(
        app.post("/api/LearnTrac/concepts/2/practice", Who::Bearer("alice"))
            .json(&json!({"score": 0.75})),
    )
    .await;
    assert_eq!((s, r["status"].as_str()), (200, Some("mastered")), "{r}");

    let t = env.read_ticket(2);
    assert_eq!(t["values"]["status"], "mastered");
    let log = t["changelog"].as_array().expect("changelog");
    assert!(
        log.iter().any(|e| e["field"] == "status"
            && e["old"] == "new"
            && e["new"] == "mastered"
            && e["author"] == "alice"),
        "{t}"
    );
    assert!(
        log.iter()
            .any(|e| e["field"] == "comment" && e["old"] == "1"),
        "{t}"
    );

    let (_, p) = call(app.get(
        "/api/LearnTrac/concepts/3/prerequisites",
        Who::Bearer("alice"),
    ))
    .await;
    assert_eq!(p["prerequisites"].as_array().map(Vec::len), Some(3), "{p}");
    let (_, m) = call(app.get(
        "/api/LearnTrac/milestones/algebra/progress",
        Who::Bearer("alice"),
    ))
    .await;
    assert_eq!(m["status_breakdown"], json!({"new": 2, "mastered": 1}));
    let (s, a) = call(app.get(
        "/api/analytics/milestones/algebra",
        Who::Cookie("carol-cookie"),
    ))
    .await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(a["students"][0]["mastered"], 1);
}
