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

/// Attempts at once, as a class practising together: each is counted once, and of several
/// that master the concept at the same moment exactly one moves Trac's ticket (one change,
/// one comment), the rest see it mastered.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_attempts_are_each_counted_and_master_a_concept_once() {
    let (env, app) = setup().await;
    let practise = |concept: i64, score: f64| {
        call(
            app.post(
                &format!("/api/LearnTrac/concepts/{concept}/practice"),
                Who::Bearer("alice"),
            )
            .json(&json!({"score": score})),
        )
    };
    const N: usize = 12;
    // Below the threshold (concept 1, 0.8): no ticket moves, every attempt counted.
    let below = futures_util::future::join_all((0..N).map(|_| practise(1, 0.2))).await;
    let mut counts: Vec<i64> = below
        .iter()
        .map(|(status, r)| {
            assert_eq!(*status, 200, "{r}");
            assert_eq!(r["status_changed"], false, "{r}");
            r["attempts"].as_i64().expect("attempts")
        })
        .collect();
    counts.sort_unstable();
    assert_eq!(
        counts,
        (1..=N as i64).collect::<Vec<_>>(),
        "each counted once"
    );
    assert_eq!(env.read_ticket(1)["values"]["status"], "new");

    // Every one of these masters concept 2 (threshold 0.7) on its own.
    let at_once = futures_util::future::join_all((0..N).map(|_| practise(2, 1.0))).await;
    for (status, r) in &at_once {
        assert_eq!(*status, 200, "{r}");
        assert_eq!(r["mastered"], true, "{r}");
        assert_eq!(r["status"], "mastered", "{r}");
    }
    let changed = at_once
        .iter()
        .filter(|(_, r)| r["status_changed"] == true)
        .count();
    assert_eq!(changed, 1, "one attempt moves the ticket: {at_once:?}");
    let t = env.read_ticket(2);
    assert_eq!(t["values"]["status"], "mastered");
    let log = t["changelog"].as_array().expect("changelog");
    assert_eq!(log.len(), 2, "one change: status and its comment: {t:#}");
    // Through the service's own door: its warm connections are not in sqlx's pool.
    let stored: (i64, i64) = app
        .state
        .db
        .run(async |c| {
            sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM learntrac_practice_attempt WHERE concept_id = 2), \
                        (SELECT attempts FROM learntrac_mastery WHERE concept_id = 2 AND student = 'alice')",
            )
            .fetch_one(c)
            .await
        })
        .await
        .expect("counts");
    assert_eq!(stored, (N as i64, N as i64));
}

/// The API shows six decimals.
fn approx(v: &Value, want: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - want).abs() <= 5e-7)
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
        ("prerequisite_concepts", String::new()), // no row, the default: stored, not logged
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
        "status": "accepted", "mastery_threshold": "0.9", "learning_difficulty": "4.0", "prerequisite_concepts": ""
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

#[tokio::test(flavor = "multi_thread")]
async fn prerequisites_are_transitive_and_cycles_are_reported_not_followed() {
    let (_env, app) = setup().await;
    let (status, p) = call(app.get(
        "/api/LearnTrac/concepts/3/prerequisites",
        Who::Bearer("alice"),
    ))
    .await;
    assert_eq!(status, 200, "{p}");
    let got: Vec<(i64, i64, bool)> = p["prerequisites"]
        .as_array()
        .expect("list")
        .iter()
        .map(|e| {
            (
                e["id"].as_i64().unwrap_or(-1),
                e["depth"].as_i64().unwrap_or(-1),
                e["missing"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![(2, 1, false), (99, 1, true), (1, 2, false)],
        "{p}"
    );
    assert_eq!(p["cycles"], json!([]));

    // 4 needs 5 and 5 needs 4.
    let (status, p) = call(app.get(
        "/api/LearnTrac/concepts/4/prerequisites",
        Who::Bearer("bob"),
    ))
    .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["prerequisites"].as_array().map(Vec::len), Some(1), "{p}");
    assert_eq!(p["prerequisites"][0]["id"], 5);
    assert_eq!(p["cycles"], json!([[5, 4]]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_students_concepts_and_progress() {
    let (_env, app) = setup().await;
    call(
        app.post("/api/LearnTrac/concepts/2/practice", Who::Bearer("alice"))
            .json(&json!({"score": 0.9})),
    )
    .await;
    call(
        app.post("/api/LearnTrac/concepts/1/practice", Who::Bearer("alice"))
            .json(&json!({"score": 0.5})),
    )
    .await;

    let (status, all) = call(app.get(
        "/api/LearnTrac/students/alice/concepts",
        Who::Bearer("alice"),
    ))
    .await;
    assert_eq!(status, 200, "{all}");
    let ids: Vec<i64> = all["concepts"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|c| c["id"].as_i64())
        .collect();
    assert_eq!(ids, vec![1, 2, 3]);
    assert_eq!(all["concepts"][0]["mastery"], 0.5);
    assert_eq!(
        all["concepts"][2]["mastery"],
        Value::Null,
        "never practised"
    );

    let (_, new_only) = call(app.get(
        "/api/LearnTrac/students/alice/concepts?status=new",
        Who::Bearer("alice"),
    ))
    .await;
    let ids: Vec<i64> = new_only["concepts"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|c| c["id"].as_i64())
        .collect();
    assert_eq!(ids, vec![1, 3]);
    let (_, two) = call(app.get(
        "/api/LearnTrac/students/alice/concepts?status=mastered,closed",
        Who::Bearer("alice"),
    ))
    .await;
    assert_eq!(two["concepts"].as_array().map(Vec::len), Some(1));
    let (status, bad) = call(app.get(
        "/api/LearnTrac/students/alice/concepts?status=new;drop",
        Who::Bearer("alice"),
    ))
    .await;
    assert_eq!(status, 400, "{bad}");

    let (status, p) = call(app.get(
        "/api/LearnTrac/students/alice/progress",
        Who::Bearer("alice"),
    ))
    .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["total_concepts"], 3);
    assert_eq!(p["completed_concepts"], 1);
    assert_eq!(p["practised_concepts"], 2);
    assert!(approx(&p["average_mastery"], 0.7), "{p}");
    assert_eq!(
        p["by_milestone"]["algebra"],
        json!({"total": 3, "completed": 1})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn milestone_progress_and_analytics() {
    let (_env, app) = setup().await;
    call(
        app.post("/api/LearnTrac/concepts/2/practice", Who::Bearer("alice"))
            .json(&json!({"score": 0.9})),
    )
    .await;
    let (status, m) = call(app.get(
        "/api/LearnTrac/milestones/algebra/progress",
        Who::Bearer("bob"),
    ))
    .await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["total_concepts"], 3);
    assert_eq!(m["completed_concepts"], 1);
    assert!(approx(&m["progress_percentage"], 100.0 / 3.0), "{m}");
    assert_eq!(m["status_breakdown"], json!({"new": 2, "mastered": 1}));
    let (_, c) = call(app.get(
        "/api/LearnTrac/milestones/calculus/progress",
        Who::Bearer("bob"),
    ))
    .await;
    assert_eq!(
        c["completed_concepts"], 1,
        "closed counts as completed: {c}"
    );
    let (status, _) = call(app.get(
        "/api/LearnTrac/milestones/geometry/progress",
        Who::Bearer("bob"),
    ))
    .await;
    assert_eq!(status, 404);

    let (status, a) = call(app.get(
        "/api/analytics/milestones/algebra",
        Who::Cookie("carol-cookie"),
    ))
    .await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["concepts"], 3);
    assert_eq!(
        a["students"],
        json!([{"student": "alice", "concepts": 3, "practised": 1, "mastered": 1, "average_mastery": 0.9}])
    );
}

/// Every endpoint × anonymous, own data, someone else's data, admin (through a group).
#[tokio::test(flavor = "multi_thread")]
async fn authorization_matrix() {
    let (_env, app) = setup().await;
    // (method, path of alice's data, own, other = bob, admin = carol). Someone else's data
    // is absent to a student (404: the API does not tell who owns what); an admin, who may
    // see it, is refused practising it (403).
    let cases: &[(&str, &str, u16, u16, u16)] = &[
        ("GET", "/api/LearnTrac/concepts/1", 200, 404, 200),
        (
            "GET",
            "/api/LearnTrac/concepts/1/prerequisites",
            200,
            404,
            200,
        ),
        ("POST", "/api/LearnTrac/concepts/1/practice", 200, 404, 403),
        (
            "GET",
            "/api/LearnTrac/students/alice/concepts",
            200,
            404,
            200,
        ),
        (
            "GET",
            "/api/LearnTrac/students/alice/progress",
            200,
            404,
            200,
        ),
        // Aggregates: any signed-in user.
        (
            "GET",
            "/api/LearnTrac/milestones/algebra/progress",
            200,
            200,
            200,
        ),
        // Everyone's mastery: TICKET_ADMIN only (bob has TICKET_VIEW).
        ("GET", "/api/analytics/milestones/algebra", 403, 403, 200),
    ];
    for (method, path, own, other, admin) in cases {
        for (who, want) in [
            (Who::Anonymous, 401),
            (Who::Cookie("not-a-session"), 401),
            (Who::Cookie("alice-cookie"), *own),
            (Who::Bearer("bob"), *other),
            (Who::Cookie("carol-cookie"), *admin),
        ] {
            let rb = if *method == "POST" {
                app.post(path, who).json(&json!({"score": 0.1}))
            } else {
                app.get(path, who)
            };
            let (status, body) = call(rb).await;
            assert_eq!(status, want, "{method} {path}: {body}");
            if status >= 400 {
                assert!(body["error"]["code"].is_string(), "JSON error body: {body}");
            }
        }
    }
    // A token signed with another secret is no token.
    let forged =
        learntrac_service::auth::issue_token("another-secret-of-at-least-32-chars!!", "alice", 60)
            .expect("token");
    let (status, _) = call(
        app.client
            .get(app.url("/api/LearnTrac/concepts/1"))
            .bearer_auth(forged),
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_json_errors() {
    let (_env, app) = setup().await;
    let practice = "/api/LearnTrac/concepts/1/practice";
    let raw = |body: &'static str| {
        app.post(practice, Who::Bearer("alice"))
            .header("content-type", "application/json")
            .body(body)
    };
    let (s, b) = call(raw("{\"score\": ")).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (400, Some("bad_request")),
        "{b}"
    );
    let (s, b) = call(raw("{}")).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (422, Some("invalid")),
        "{b}"
    );
    let (s, b) = call(raw("{\"score\": \"high\"}")).await;
    assert_eq!(s, 422, "{b}");
    let (s, b) = call(raw("{\"score\": 1.5}")).await;
    assert_eq!(s, 422, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("outside 0..1")),
        "{b}"
    );
    let (s, b) = call(raw("{\"score\": 0.5, \"extra\": 1}")).await;
    assert_eq!(s, 422, "{b}");
    let (s, b) = call(app.post(practice, Who::Bearer("alice")).body("score=1")).await;
    assert_eq!(s, 400, "{b}");
    // An oversized body is refused from its Content-Length alone. The body is not sent:
    // a server that answers early and closes on unread bytes resets the connection, and
    // the reset can discard the answer before the client reads it.
    let head = format!(
        "POST {practice} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100000\r\nconnection: close\r\n\r\n"
    );
    let addr = app.base.trim_start_matches("http://").to_string();
    let answer = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut sock = std::net::TcpStream::connect(addr).expect("connect");
        sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        sock.write_all(head.as_bytes()).expect("send head");
        let mut buf = [0u8; 64];
        let n = sock.read(&mut buf).expect("read the answer");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    })
    .await
    .expect("raw request");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let (s, b) = call(app.get("/api/LearnTrac/concepts/4242", Who::Bearer("alice"))).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{b}"
    );
    let (s, b) = call(app.get("/api/LearnTrac/concepts/abc", Who::Bearer("alice"))).await;
    assert_eq!(s, 400, "{b}");
    let (s, b) = call(app.get("/api/LearnTrac/nothing-here", Who::Bearer("alice"))).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{b}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn health_endpoints_and_openapi() {
    let (_env, app) = setup().await;
    let (s, h) = call(app.get("/health", Who::Anonymous)).await;
    assert_eq!(s, 200, "{h}");
    assert_eq!(h["status"], "healthy");
    assert_eq!(h["checks"]["database"]["status"], "up");
    assert_eq!(h["checks"]["database"]["backend"], "postgres");
    assert_eq!(h["checks"]["cache"]["status"], "up");
    let (s, h) = call(app.get("/api/LearnTrac/health", Who::Anonymous)).await;
    assert_eq!(s, 200);
    assert_eq!(h["features"]["learning"], "enabled");

    let (s, doc) = call(app.get("/api/LearnTrac/openapi.json", Who::Anonymous)).await;
    assert_eq!(s, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/health",
        "/api/LearnTrac/health",
        "/api/LearnTrac/concepts/{id}",
        "/api/LearnTrac/concepts/{id}/practice",
        "/api/LearnTrac/concepts/{id}/prerequisites",
        "/api/LearnTrac/students/{id}/concepts",
        "/api/LearnTrac/students/{id}/progress",
        "/api/LearnTrac/milestones/{name}/progress",
        "/api/analytics/milestones/{name}",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    // Every response carries a request id for the logs.
    let resp = app
        .get("/api/LearnTrac/health", Who::Anonymous)
        .send()
        .await
        .expect("request");
    assert!(resp.headers().get("x-request-id").is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn concept_reads_are_cached_in_redis_and_invalidated_on_writes() {
    let (_env, app) = setup().await;
    let client = redis::Client::open(common::redis_url()).expect("redis client");
    let mut r = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let key = app.state.cache.concept_key(2);
    call(app.get("/api/LearnTrac/concepts/2", Who::Bearer("alice"))).await;
    let cached: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut r)
        .await
        .expect("get");
    let cached: Value = serde_json::from_str(&cached.expect("cached after a read")).expect("JSON");
    assert_eq!(cached["summary"], "Equations");
    call(
        app.post("/api/LearnTrac/concepts/2/practice", Who::Bearer("alice"))
            .json(&json!({"score": 0.1})),
    )
    .await;
    let after: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut r)
        .await
        .expect("get");
    assert!(after.is_none(), "a write invalidates the cached concept");
}

/// RFC 9110/6750 at the door: case-insensitive scheme, challenges on 401, JWT `nbf` and a
/// bounded lifetime; and the framework's own errors (405, 413) in the documented JSON.
#[tokio::test(flavor = "multi_thread")]
async fn auth_edges_and_every_error_is_json() {
    use learntrac_service::auth::Claims;
    let (_env, app) = setup().await;
    let path = "/api/LearnTrac/concepts/1";
    let token =
        learntrac_service::auth::issue_token(common::TOKEN_SECRET, "alice", 600).expect("token");
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let resp = app
            .client
            .get(app.url(path))
            .header("authorization", format!("{scheme}  {token}"))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 200, "scheme {scheme}");
    }
    let challenge = |resp: &reqwest::Response| {
        resp.headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let resp = app.client.get(app.url(path)).send().await.expect("request");
    assert_eq!(resp.status(), 401);
    assert_eq!(challenge(&resp), "Bearer realm=\"LearnTrac\"");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let sign = |claims: &Claims| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            claims,
            &jsonwebtoken::EncodingKey::from_secret(common::TOKEN_SECRET.as_bytes()),
        )
        .expect("sign")
    };
    let claims = |exp: u64, iat: Option<u64>, nbf: Option<u64>| Claims {
        sub: "alice".into(),
        exp,
        iat,
        nbf,
    };
    for (what, token, want) in [
        ("valid", sign(&claims(now + 600, Some(now), None)), 200),
        (
            "not yet valid",
            sign(&claims(now + 600, Some(now), Some(now + 300))),
            401,
        ),
        (
            "a year long",
            sign(&claims(now + 365 * 86_400, Some(now), None)),
            401,
        ),
        (
            "a year long, no iat",
            sign(&claims(now + 365 * 86_400, None, None)),
            401,
        ),
        (
            "iat in the future",
            sign(&claims(now + 30 * 86_400, Some(now + 29 * 86_400), None)),
            401,
        ),
        (
            "expired",
            sign(&claims(now - 120, Some(now - 700), None)),
            401,
        ),
    ] {
        let resp = app
            .client
            .get(app.url(path))
            .bearer_auth(&token)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), want, "{what}");
        if want == 401 {
            assert_eq!(
                challenge(&resp),
                "Bearer realm=\"LearnTrac\", error=\"invalid_token\"",
                "{what}"
            );
            let body: Value = resp.json().await.expect("JSON");
            assert_eq!(body["error"]["code"], "invalid_token", "{what}");
        }
    }

    // 405 from the router: JSON, with Allow.
    let resp = app
        .client
        .delete(app.url(path))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 405);
    assert!(resp.headers().get("allow").is_some(), "Allow is kept");
    let body: Value = resp.json().await.expect("a JSON body");
    assert_eq!(body["error"]["code"], "method_not_allowed");
    // 413 from the body limit, when the body streams in without a length. The service may
    // answer before the client has sent everything and close with bytes unread; the reset
    // that follows can discard the answer, so a transport error is tried again.
    let mut answered = None;
    for _ in 0..10 {
        let big = vec![b' '; 2 * 1024 * 1024];
        let stream = futures_util::stream::iter(
            big.chunks(64 * 1024)
                .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
                .collect::<Vec<_>>(),
        );
        let sent = app
            .post("/api/LearnTrac/concepts/1/practice", Who::Bearer("alice"))
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await;
        if let Ok(resp) = sent {
            let status = resp.status();
            if let Ok(body) = resp.json::<Value>().await {
                answered = Some((status, body));
                break;
            }
        }
    }
    let (status, body) = answered.expect("an answer to the oversized body");
    assert_eq!(status, 413);
    assert_eq!(body["error"]["code"], "payload_too_large");
}

/// A checked Trac cookie is remembered briefly (no `auth_cookie` query per request), and a
/// logout in Trac — its row deleted — reaches the API once that time is over.
#[tokio::test(flavor = "multi_thread")]
async fn a_logout_in_trac_reaches_the_api_within_the_session_cache_time() {
    let env = TracEnv::postgres().await;
    standard_seed(&env);
    let app = App::spawn_with(
        &env.database_url,
        common::AppOptions {
            session_cache_ms: 3000,
            ..common::AppOptions::default()
        },
    )
    .await;
    let concept = "/api/LearnTrac/concepts/2";
    let mut db = common::sqlx_pg(&env.database_url).await;
    let (status, _) = call(app.get(concept, Who::Cookie("alice-cookie"))).await;
    assert_eq!(status, 200);
    sqlx::query("DELETE FROM auth_cookie WHERE cookie = 'alice-cookie'")
        .execute(&mut db)
        .await
        .expect("log alice out as Trac does");
    let (status, _) = call(app.get(concept, Who::Cookie("alice-cookie"))).await;
    assert_eq!(status, 200, "remembered for a moment");
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let (status, body) = call(app.get(concept, Who::Cookie("alice-cookie"))).await;
    assert_eq!(status, 401, "logged out: {body}");
    // An unknown cookie is never remembered: once Trac has it, it works at once.
    let (status, _) = call(app.get(concept, Who::Cookie("late-cookie"))).await;
    assert_eq!(status, 401);
    sqlx::query("INSERT INTO auth_cookie (cookie, name, ipnr, time) VALUES ('late-cookie', 'alice', '127.0.0.1', 0)")
        .execute(&mut db)
        .await
        .expect("log in as Trac does");
    let (status, _) = call(app.get(concept, Who::Cookie("late-cookie"))).await;
    assert_eq!(status, 200);
}

/// Warm connections (db/warm.rs) are handed back without sqlx's release check, so they must
/// never carry what a cancelled or failed use left behind: with one connection, a query cut
/// off mid-flight and a failed transaction are followed by queries that get their own
/// answers, and a clean use hands the same server session to the next caller.
#[tokio::test(flavor = "multi_thread")]
async fn warm_connections_are_reused_only_when_clean() {
    use learntrac_service::db::Db;
    use std::time::Duration;

    let env = TracEnv::postgres().await;
    let db = Db::connect_lazy(&env.database_url, 1, Duration::from_secs(5)).expect("pool");
    let backend_pid = async || {
        db.run(async |c| {
            sqlx::query_scalar::<_, i32>("SELECT pg_backend_pid()")
                .fetch_one(c)
                .await
        })
        .await
        .expect("pid")
    };
    let first = backend_pid().await;
    assert_eq!(
        backend_pid().await,
        first,
        "a clean use parks the connection"
    );

    // Cancelled mid-query: its answer must not reach the next caller.
    let cut = tokio::time::timeout(
        Duration::from_millis(200),
        db.run(async |c| {
            sqlx::query_scalar::<_, i32>("SELECT 7 FROM pg_sleep(1)")
                .fetch_one(c)
                .await
        }),
    )
    .await;
    assert!(cut.is_err(), "the slow query was cut off");
    let n: i32 = db
        .run(async |c| sqlx::query_scalar("SELECT 42").fetch_one(c).await)
        .await
        .expect("query after a cancelled one");
    assert_eq!(n, 42);

    // A transaction that fails part-way is rolled back, not left open for the next caller.
    let failed: Result<(), sqlx::Error> = db
        .run(async |c| {
            use sqlx::Connection;
            let mut tx = c.begin().await?;
            sqlx::query("CREATE TEMP TABLE warm_probe (x int)")
                .execute(&mut *tx)
                .await?;
            sqlx::query("SELECT 1/0").execute(&mut *tx).await?;
            tx.commit().await
        })
        .await;
    assert!(failed.is_err());
    let open: String = db
        .run(async |c| {
            sqlx::query_scalar(
                "SELECT CAST(count(*) AS TEXT) FROM pg_class WHERE relname = 'warm_probe'",
            )
            .fetch_one(c)
            .await
        })
        .await
        .expect("query after a failed transaction");
    assert_eq!(open, "0", "the failed transaction was rolled back");
    // PostgreSQL refuses a savepoint outside a transaction block (25P01).
    let savepoint = db
        .run(async |c| sqlx::query("SAVEPOINT probe").execute(c).await)
        .await;
    match savepoint {
        Err(sqlx::Error::Database(e)) => assert_eq!(e.code().as_deref(), Some("25P01"), "{e}"),
        other => panic!("a savepoint outside a transaction must fail, got {other:?}"),
    }
}
