//! The API against real PostgreSQL, Redis and a Trac environment made by real trac-admin.

mod common;

use common::{App, TracEnv, Who, call, standard_seed};
use serde_json::{Value, json};

async fn setup() -> (TracEnv, App) {
    let env = TracEnv::postgres().await;
    standard_seed(&env);
    let app = App::spawn(&env.database_url).await;
    (env, app)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_concept_is_a_trac_ticket_with_learning_fields() {
    let (_env, app) = setup().await;
    let (status, c) = call(app.get("/api/LearnTrac/concepts/2", Who::Cookie("alice-cookie"))).await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["summary"], "Equations");
    assert_eq!(c["owner"], "alice");
    assert_eq!(c["milestone"], "algebra");
    assert_eq!(c["status"], "new");
    assert_eq!(c["learning_difficulty"], 3.5);
    assert_eq!(c["mastery_threshold"], 0.7);
    assert_eq!(c["prerequisites"], json!([1]));
    assert_eq!(c["custom_fields"]["prerequisite_concepts"], "[1]");
    // Trac's unit: microseconds since the epoch (now is ~1.8e15).
    let time = c["time"].as_i64().expect("time");
    assert!(
        time > 1_700_000_000_000_000 && time < 4_000_000_000_000_000,
        "{time}"
    );

    let (_, d) = call(app.get("/api/LearnTrac/concepts/1", Who::Bearer("alice"))).await;
    assert_eq!(d["learning_difficulty"], 2.0, "default difficulty");
    assert_eq!(d["mastery_threshold"], 0.8, "default threshold");
    assert_eq!(d["prerequisites"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn practice_reaching_the_threshold_moves_the_ticket_to_mastered_as_trac_sees_it() {
    let (env, app) = setup().await;
    let (status, r) = call(
        app.post("/api/LearnTrac/concepts/2/practice", Who::Bearer("alice"))
            .json(&json!({"score": 0.9})),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["mastery"], 0.9);
    assert_eq!(r["attempts"], 1);
    assert_eq!(r["mastered"], true);
    assert_eq!(r["status"], "mastered");
    assert_eq!(r["status_changed"], true);

    let t = env.read_ticket(2);
    assert_eq!(t["values"]["status"], "mastered", "{t}");
    let log = t["changelog"].as_array().expect("changelog");
    let status_change = log
        .iter()
        .find(|e| e["field"] == "status")
        .expect("status change in Trac's log");
    assert_eq!(status_change["author"], "alice");
    assert_eq!(status_change["old"], "new");
    assert_eq!(status_change["new"], "mastered");
    let comment = log
        .iter()
        .find(|e| e["field"] == "comment")
        .expect("comment row");
    assert_eq!(comment["old"], "1", "Trac's comment number");
    assert!(
        comment["new"]
            .as_str()
            .is_some_and(|s| s.contains("mastery 0.90")),
        "{comment}"
    );
    assert_eq!(
        status_change["time"], comment["time"],
        "one change, one time"
    );
    assert_eq!(
        t["values"]["changetime"], status_change["time"],
        "ticket changetime is the change's time"
    );

    // Mastered stays mastered: more practice records attempts but writes no Trac change.
    let (_, again) = call(
        app.post("/api/LearnTrac/concepts/2/practice", Who::Bearer("alice"))
            .json(&json!({"score": 0.2})),
    )
    .await;
    assert_eq!(again["status_changed"], false);
    assert_eq!(again["attempts"], 2);
    assert_eq!(
        env.read_ticket(2)["changelog"].as_array().map(Vec::len),
        Some(2)
    );

    // The cache was invalidated: the concept now reads mastered.
    let (_, c) = call(app.get("/api/LearnTrac/concepts/2", Who::Bearer("alice"))).await;
    assert_eq!(c["status"], "mastered");
}

fn approx(v: &Value, want: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - want).abs() < 1e-9)
}

#[tokio::test(flavor = "multi_thread")]
async fn mastery_is_the_mean_of_the_last_five_attempts() {
    let (env, app) = setup().await;
    let practise = |score: f64| {
        call(
            app.post("/api/LearnTrac/concepts/1/practice", Who::Bearer("alice"))
                .json(&json!({"score": score})),
        )
    };
    for (score, mean) in [(0.3, 0.3), (0.5, 0.4), (1.0, 0.6), (1.0, 0.7), (1.0, 0.76)] {
        let (status, r) = practise(score).await;
        assert_eq!(status, 200, "{r}");
        assert!(approx(&r["mastery"], mean), "after {score}: {r}");
        assert_eq!(r["status"], "new", "below the 0.8 threshold: {r}");
    }
    // The whole history averages 0.783, but the last five average 0.88: mastered.
    let (_, r) = practise(0.9).await;
    assert!(approx(&r["mastery"], 0.88), "{r}");
    assert_eq!(r["attempts"], 6);
    assert_eq!(r["status_changed"], true);
    assert_eq!(env.read_ticket(1)["values"]["status"], "mastered");
}

#[tokio::test(flavor = "multi_thread")]
async fn bridge_changes_are_recorded_exactly_as_trac_records_them() {
    use learntrac_service::db::Db;
    use learntrac_service::trac::{LearningChange, update_learning_status};

    let env = TracEnv::postgres().await;
    // Twin tickets: the service changes one, Trac itself the other, identically.
    let ids = env.seed(json!({"tickets": [
        {"summary": "twin", "owner": "alice"}, {"summary": "twin", "owner": "alice"}
    ]}));
    let db =
        Db::connect_lazy(&env.database_url, 2, std::time::Duration::from_secs(5)).expect("pool");
    // A field declared after the ticket was created has no ticket_custom row yet.
    for id in &ids {
        sqlx::query("DELETE FROM ticket_custom WHERE ticket = $1 AND name IN ('learning_difficulty', 'prerequisite_concepts')")
            .bind(*id)
            .execute(&db.pool)
            .await
            .expect("delete custom rows");
    }
    let custom = [
        ("mastery_threshold", "0.9".to_string()), // existing row, changed
        ("learning_difficulty", "4.0".to_string()), // no row, not the default: a change
        ("prerequisite_concepts", "[]".to_string()), // no row, the default: stored, not logged
    ];
    let mut conn = db.pool.acquire().await.expect("connection");
    let rec = update_learning_status(
        &mut conn,
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
    .expect("update")
    .expect("a change");
    assert_eq!(rec.comment_number, "1");
    env.trac_change(ids[1], json!({"author": "teacher", "comment": "tuned", "fields": {
        "status": "accepted", "mastery_threshold": "0.9", "learning_difficulty": "4.0", "prerequisite_concepts": "[]"
    }}));

    let ours = env.read_ticket(ids[0]);
    let trac = env.read_ticket(ids[1]);
    let shape = |t: &Value| {
        let mut log: Vec<(String, Value, Value, String)> = t["changelog"]
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
    };
    assert_eq!(
        shape(&ours),
        shape(&trac),
        "ours:\n{ours:#}\ntrac:\n{trac:#}"
    );
    for field in [
        "status",
        "mastery_threshold",
        "learning_difficulty",
        "prerequisite_concepts",
    ] {
        assert_eq!(ours["values"][field], trac["values"][field], "{field}");
    }
    assert!(
        shape(&ours).iter().all(|e| e.0 != "prerequisite_concepts"),
        "a default is not logged"
    );

    // A second change gets Trac's next comment number and a later time.
    let rec2 = update_learning_status(
        &mut conn,
        db.backend,
        &LearningChange {
            ticket: ids[0],
            author: "teacher",
            status: Some("mastered"),
            custom: &[],
            comment: "",
        },
    )
    .await
    .expect("update")
    .expect("a change");
    assert_eq!(rec2.comment_number, "2");
    assert!(rec2.time > rec.time);
    // Nothing to change is no change.
    let none = update_learning_status(
        &mut conn,
        db.backend,
        &LearningChange {
            ticket: ids[0],
            author: "teacher",
            status: Some("mastered"),
            custom: &[],
            comment: "",
        },
    )
    .await
    .expect("update");
    assert!(none.is_none());
}
