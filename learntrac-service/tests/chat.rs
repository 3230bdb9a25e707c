//! The chat tutor against real PostgreSQL and a Trac environment made by real trac-admin;
//! the model is the protocol-faithful double in common/fake_model.rs (no model can run here).

mod common;

use std::time::Duration;

use common::fake_model::{FakeModel, answer_words, course_material, sse_events};
use common::{App, AppOptions, TracEnv, Who, call, standard_seed};
use serde_json::{Value, json};

async fn setup(extra: &[(&'static str, &str)]) -> (TracEnv, App, FakeModel) {
    let env = TracEnv::postgres().await;
    standard_seed(&env);
    let model = FakeModel::start().await;
    let mut vars = vec![
        ("CHAT_BASE_URL", model.base_url.clone()),
        ("CHAT_MODEL", "tutor-model".to_string()),
        ("CHAT_API_KEY", "sk-test-key".to_string()),
    ];
    vars.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let app = App::spawn_with(
        &env.database_url,
        AppOptions {
            extra: vars,
            ..AppOptions::default()
        },
    )
    .await;
    (env, app, model)
}

/// Asks and reads the whole event stream.
async fn ask(
    app: &App,
    concept: i64,
    who: Who<'_>,
    body: Value,
) -> (u16, Vec<(String, Value)>, String) {
    let resp = app
        .post(&format!("/api/chat/concepts/{concept}/messages"), who)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let kind = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = resp.text().await.expect("body");
    if status == 200 {
        assert!(kind.starts_with("text/event-stream"), "{kind}");
    }
    (status, sse_events(&text), text)
}

fn text_of(events: &[(String, Value)]) -> String {
    events
        .iter()
        .filter(|(n, _)| n == "delta")
        .filter_map(|(_, d)| d["text"].as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_question_streams_a_grounded_answer_and_the_conversation_is_kept() {
    let (_env, app, model) = setup(&[]).await;
    let (_, health) = call(app.get("/api/LearnTrac/health", Who::Anonymous)).await;
    assert_eq!(health["features"]["chat"], "enabled");
    // Some practice first, so the tutor knows where the student stands.
    let (s, _) = call(
        app.post("/api/LearnTrac/concepts/1/practice", Who::Bearer("alice"))
            .json(&json!({"score": 0.9})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = call(
        app.post("/api/LearnTrac/concepts/2/practice", Who::Bearer("alice"))
            .json(&json!({"score": 0.5})),
    )
    .await;
    assert_eq!(s, 200);

    let (status, events, raw) = ask(
        &app,
        2,
        Who::Cookie("alice-cookie"),
        json!({"message": "How do I start?"}),
    )
    .await;
    assert_eq!(status, 200, "{raw}");
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"conversation"), "{names:?}");
    assert_eq!(names.last(), Some(&"done"), "{names:?}");
    assert!(
        names.iter().filter(|n| **n == "delta").count() > 3,
        "streamed in pieces: {names:?}"
    );
    assert_eq!(text_of(&events), answer_words("Equations").concat());
    let conversation = events[0].1["conversation_id"]
        .as_i64()
        .expect("conversation id");
    assert_eq!(
        events.last().map(|e| e.1["tokens"].clone()),
        Some(json!(62)),
        "the model's usage"
    );

    // What reached the model: the key, the model name, and Trac's data about this student.
    let req = &model.requests()[0];
    assert_eq!(req["model"], "tutor-model");
    assert_eq!(
        model.seen.auth.lock().expect("lock")[0],
        "Bearer sk-test-key"
    );
    let system = req["messages"][0]["content"]
        .as_str()
        .expect("system message");
    assert!(
        system.contains("mastery: 0.50 after 1 practice attempt(s); 0.70 counts as mastered"),
        "{system}"
    );
    // Trac's text arrives as quoted material, not as instructions.
    let material = course_material(system);
    assert_eq!(
        (&material["concept"], &material["summary"]),
        (&json!(2), &json!("Equations")),
        "{system}"
    );
    assert_eq!(
        material["prerequisites"][0],
        json!({"concept": 1, "summary": "Variables", "status": "mastered", "student_mastery": "0.90"}),
        "{system}"
    );
    assert_eq!(
        req["messages"][1],
        json!({"role": "user", "content": "How do I start?"})
    );

    // The conversation goes on with its history.
    let (status, events, raw) = ask(
        &app,
        2,
        Who::Bearer("alice"),
        json!({"message": "And then?", "conversation_id": conversation}),
    )
    .await;
    assert_eq!(status, 200, "{raw}");
    assert_eq!(events.last().map(|e| e.0.as_str()), Some("done"));
    let second = model.requests()[1].clone();
    let roles: Vec<&str> = second["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["role"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(roles, ["system", "user", "assistant", "user"]);

    // Read back, as a reloaded page does.
    let (s, c) = call(app.get("/api/chat/concepts/2/conversation", Who::Bearer("alice"))).await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["id"], conversation);
    let msgs = c["messages"].as_array().expect("messages");
    assert_eq!(msgs.len(), 4);
    assert_eq!(msgs[0]["content"], "How do I start?");
    assert_eq!(msgs[1]["role"], "assistant");
    assert_eq!(msgs[1]["status"], "complete");
    assert_eq!(msgs[1]["content"], answer_words("Equations").concat());
    let (s, same) = call(app.get(
        &format!("/api/chat/conversations/{conversation}"),
        Who::Bearer("alice"),
    ))
    .await;
    assert_eq!((s, &same), (200, &c));

    // Someone else's: not theirs to read or to continue.
    let (s, _) = call(app.get(
        &format!("/api/chat/conversations/{conversation}"),
        Who::Bearer("bob"),
    ))
    .await;
    assert_eq!(s, 404);
    let (s, _, _) = ask(
        &app,
        2,
        Who::Bearer("bob"),
        json!({"message": "hi", "conversation_id": conversation}),
    )
    .await;
    assert_eq!(s, 404, "bob cannot see alice's concept");
    let (s, _, _) = ask(
        &app,
        4,
        Who::Bearer("alice"),
        json!({"message": "hi", "conversation_id": conversation}),
    )
    .await;
    assert_eq!(s, 404, "concept 4 is bob's");
    let (s, _, _) = ask(&app, 2, Who::Anonymous, json!({"message": "hi"})).await;
    assert_eq!(s, 401);
    let (s, _, raw) = ask(&app, 2, Who::Bearer("alice"), json!({"message": "  "})).await;
    assert_eq!(s, 422, "{raw}");
}

#[tokio::test(flavor = "multi_thread")]
async fn model_failures_end_the_stream_with_a_clear_event_and_keep_what_arrived() {
    let (_env, app, model) = setup(&[("CHAT_STALL_SECONDS", "1")]).await;

    let (s, events, raw) = ask(
        &app,
        1,
        Who::Bearer("alice"),
        json!({"message": "[500] please"}),
    )
    .await;
    assert_eq!(s, 200, "{raw}");
    let (name, data) = events.last().expect("an event");
    assert_eq!(name, "error", "{raw}");
    assert_eq!(data["code"], "model_error");
    // The student is told what to do; the model's own words stay in the operator's log.
    let told = data["message"].as_str().unwrap_or("");
    assert!(told.contains("could not answer just now"), "{data}");
    assert!(!told.contains("server had an error"), "{data}");
    // One conversation throughout, as the page keeps it.
    let cid = events
        .iter()
        .find(|(n, _)| n == "conversation")
        .map(|(_, d)| d["conversation_id"].clone())
        .expect("a conversation event");

    let (_, events, raw) = ask(
        &app,
        1,
        Who::Bearer("alice"),
        json!({"message": "[429] please", "conversation_id": cid}),
    )
    .await;
    let (name, data) = events.last().expect("an event");
    assert_eq!(
        (name.as_str(), &data["code"], &data["retry_after"]),
        ("error", &json!("model_rate_limited"), &json!(7)),
        "{raw}"
    );
    assert!(
        data["message"]
            .as_str()
            .unwrap_or("")
            .contains("try again in 7 seconds"),
        "{data}"
    );

    let started = std::time::Instant::now();
    let (_, events, raw) = ask(
        &app,
        1,
        Who::Bearer("alice"),
        json!({"message": "[stall] please", "conversation_id": cid}),
    )
    .await;
    let (name, data) = events.last().expect("an event");
    assert_eq!(
        (name.as_str(), &data["code"]),
        ("error", &json!("model_stalled")),
        "{raw}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a stalled model is given up on"
    );
    let partial = text_of(&events);
    assert_eq!(
        partial,
        answer_words("Variables")[..2].concat(),
        "two chunks arrived before the stall"
    );

    // Saved: every question, each failed answer as an empty incomplete one (a reload
    // shows it failed), the stalled answer incomplete with what arrived.
    let (s, c) = call(app.get("/api/chat/concepts/1/conversation", Who::Bearer("alice"))).await;
    assert_eq!(s, 200, "{c}");
    let msgs = c["messages"].as_array().expect("messages");
    let shape: Vec<(&str, &str, bool)> = msgs
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap_or(""),
                m["status"].as_str().unwrap_or(""),
                m["content"].as_str().unwrap_or("").is_empty(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            ("user", "complete", false),
            ("assistant", "incomplete", true),
            ("user", "complete", false),
            ("assistant", "incomplete", true),
            ("user", "complete", false),
            ("assistant", "incomplete", false),
        ],
        "{c}"
    );
    assert_eq!(msgs[5]["content"], partial.as_str());

    // The next question reaches the model as a well-formed conversation: the unanswered
    // questions are left out, so user and assistant alternate.
    assert_eq!(c["id"], cid);
    let (_, events, raw) = ask(
        &app,
        1,
        Who::Bearer("alice"),
        json!({"message": "and now?", "conversation_id": cid}),
    )
    .await;
    assert_eq!(events.last().map(|e| e.0.as_str()), Some("done"), "{raw}");
    let sent = model.requests().last().cloned().expect("a request");
    let roles: Vec<&str> = sent["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["role"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(roles, ["system", "user", "assistant", "user"], "{sent}");
    assert_eq!(sent["messages"][1]["content"], "[stall] please");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_answer_is_saved_when_the_student_goes_away_mid_stream() {
    let (_env, app, _model) = setup(&[]).await;
    let mut resp = app
        .post("/api/chat/concepts/2/messages", Who::Bearer("alice"))
        .json(&json!({"message": "[slow] explain"}))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 200);
    let first = resp.chunk().await.expect("a chunk").expect("not ended");
    assert!(String::from_utf8_lossy(&first).contains("conversation"));
    drop(resp); // the tab closes

    let want = answer_words("Equations").concat();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (s, c) = call(app.get("/api/chat/concepts/2/conversation", Who::Bearer("alice"))).await;
        assert_eq!(s, 200, "{c}");
        if c["messages"][1]["content"] == json!(want) {
            assert_eq!(c["messages"][1]["status"], "complete");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the answer was not saved: {c}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_student_over_the_daily_limit_gets_429_until_midnight() {
    let (_env, app, model) = setup(&[("CHAT_DAILY_REQUESTS", "2")]).await;
    for _ in 0..2 {
        let (s, events, raw) = ask(&app, 1, Who::Bearer("alice"), json!({"message": "hi"})).await;
        assert_eq!(
            (s, events.last().map(|e| e.0.as_str())),
            (200, Some("done")),
            "{raw}"
        );
    }
    let resp = app
        .post("/api/chat/concepts/1/messages", Who::Bearer("alice"))
        .json(&json!({"message": "one more"}))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 429);
    let retry: u64 = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=86_400).contains(&retry), "{retry}");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["code"], "too_many_requests");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("2 questions"),
        "{body}"
    );
    assert_eq!(
        model.requests().len(),
        2,
        "the refused question never reached the model"
    );
    // Another student is not affected.
    let (s, _, _) = ask(&app, 4, Who::Bearer("bob"), json!({"message": "hi"})).await;
    assert_eq!(s, 200);
}

/// The day's tokens (reservations included) counted for a student.
async fn tokens_today(env: &TracEnv, student: &str) -> i64 {
    let mut c = common::sqlx_pg(&env.database_url).await;
    sqlx::query_scalar::<_, i64>(
        "SELECT COALESCE(SUM(tokens), 0)::BIGINT FROM learntrac_chat_usage WHERE student = $1",
    )
    .bind(student)
    .fetch_one(&mut c)
    .await
    .expect("usage")
}

#[tokio::test(flavor = "multi_thread")]
async fn questions_sent_at_once_cannot_overrun_the_token_limit_or_pile_up() {
    // A limit under one answer's worst case (CHAT_MAX_TOKENS 600 + the prompt): with the
    // reservation made in the statement that counts the request, exactly one of several
    // questions sent at once — through two tasks — is answered. (Before: each checked the
    // total before any answer was counted, and all were answered.)
    let (env, app, model) = setup(&[("CHAT_DAILY_TOKENS", "700")]).await;
    let other_task = App::spawn_with(
        &env.database_url,
        AppOptions {
            extra: vec![
                ("CHAT_BASE_URL", model.base_url.clone()),
                ("CHAT_MODEL", "tutor-model".to_string()),
                ("CHAT_DAILY_TOKENS", "700".to_string()),
            ],
            ..AppOptions::default()
        },
    )
    .await;
    let slow = json!({"message": "[slow] explain"});
    let asked = futures_util::future::join_all(
        [&app, &app, &other_task, &other_task]
            .into_iter()
            .map(|a| ask(a, 1, Who::Bearer("alice"), slow.clone())),
    )
    .await;
    let answered = asked.iter().filter(|(s, _, _)| *s == 200).count();
    assert_eq!(
        answered,
        1,
        "{:?}",
        asked.iter().map(|a| a.0).collect::<Vec<_>>()
    );
    for (s, _, raw) in asked.iter().filter(|(s, _, _)| *s != 200) {
        assert_eq!(*s, 429, "{raw}");
        assert!(raw.contains("700 tokens"), "{raw}");
    }
    assert_eq!(model.requests().len(), 1);
    // Settled to the model's own figure (62), so she can ask again.
    assert_eq!(tokens_today(&env, "alice").await, 62);
    let (s, _, raw) = ask(&app, 1, Who::Bearer("alice"), json!({"message": "again"})).await;
    assert_eq!(s, 200, "{raw}");

    // Thirty at once to one task: two answers in flight per student; the rest are refused
    // at once, not counted against her day, and never reach the model.
    let (env, app, model) = setup(&[]).await;
    let asked = futures_util::future::join_all(
        (0..30).map(|_| ask(&app, 1, Who::Bearer("alice"), slow.clone())),
    )
    .await;
    let statuses: Vec<u16> = asked.iter().map(|a| a.0).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        2,
        "{statuses:?}"
    );
    let refused = asked.iter().find(|a| a.0 == 429).map(|a| a.2.clone());
    assert!(
        refused
            .as_deref()
            .unwrap_or("")
            .contains("answers on the way"),
        "{refused:?}"
    );
    assert_eq!(model.requests().len(), 2);
    assert_eq!(tokens_today(&env, "alice").await, 2 * 62);
    // Bob, in the same class, is not held up by her.
    let (s, _, _) = ask(&app, 4, Who::Bearer("bob"), json!({"message": "hi"})).await;
    assert_eq!(s, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_conversation_costs_nothing() {
    let (env, app, model) = setup(&[("CHAT_DAILY_REQUESTS", "1")]).await;
    let (s, _, raw) = ask(
        &app,
        1,
        Who::Bearer("alice"),
        json!({"message": "hi", "conversation_id": 999_999}),
    )
    .await;
    assert_eq!(s, 404, "{raw}");
    assert_eq!(tokens_today(&env, "alice").await, 0);
    let (s, _, raw) = ask(&app, 1, Who::Bearer("alice"), json!({"message": "hi"})).await;
    assert_eq!(s, 200, "the 404 did not use her one question: {raw}");
    assert_eq!(model.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_conversation_is_read_a_page_at_a_time() {
    let (_env, app, _model) = setup(&[]).await;
    let mut conversation = Value::Null;
    for i in 0..3 {
        let mut body = json!({"message": format!("question {i}")});
        if !conversation.is_null() {
            body["conversation_id"] = conversation.clone();
        }
        let (s, events, raw) = ask(&app, 1, Who::Bearer("alice"), body).await;
        assert_eq!(s, 200, "{raw}");
        conversation = events[0].1["conversation_id"].clone();
    }
    let page = |q: &str| {
        app.get(
            &format!("/api/chat/conversations/{conversation}{q}"),
            Who::Bearer("alice"),
        )
    };
    let (s, newest) = call(page("?limit=2")).await;
    assert_eq!(s, 200, "{newest}");
    let contents = |v: &Value| -> Vec<String> {
        v["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| {
                format!(
                    "{}:{}",
                    m["role"].as_str().unwrap_or(""),
                    m["content"].as_str().unwrap_or("").len().min(10)
                )
            })
            .collect()
    };
    assert_eq!(newest["messages"][0]["content"], "question 2", "{newest}");
    assert_eq!(contents(&newest).len(), 2);
    assert_eq!(newest["more"], true);
    let before = newest["messages"][0]["id"].clone();
    let (_, older) = call(page(&format!("?limit=4&before={before}"))).await;
    assert_eq!(older["messages"][0]["content"], "question 0", "{older}");
    assert_eq!(contents(&older).len(), 4);
    assert_eq!(older["more"], false);
    let (_, all) = call(page("")).await;
    assert_eq!(contents(&all).len(), 6, "the default page holds it all");
    for bad in ["?limit=0", "?limit=201", "?limit=x", "?page=2"] {
        assert_eq!(call(page(bad)).await.0, 400, "{bad}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_model_students_are_told_the_tutor_is_off() {
    let env = TracEnv::postgres().await;
    standard_seed(&env);
    let app = App::spawn(&env.database_url).await;
    let (_, health) = call(app.get("/api/LearnTrac/health", Who::Anonymous)).await;
    assert_eq!(health["features"]["chat"], "disabled");
    let (s, body) = call(
        app.post("/api/chat/concepts/1/messages", Who::Bearer("alice"))
            .json(&json!({"message": "hi"})),
    )
    .await;
    assert_eq!(s, 503);
    assert_eq!(body["error"]["code"], "not_configured");
    // A student reads this: no settings' names (the operator's log has them).
    let told = body["error"]["message"].as_str().unwrap_or("");
    assert!(told.contains("not turned on"), "{body}");
    assert!(!told.contains("CHAT_"), "{body}");
}
