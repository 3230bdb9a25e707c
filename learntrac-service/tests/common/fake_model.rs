//! A test double of an OpenAI-compatible Chat Completions server (no real model can run
//! here within CI's budget), faithful to the protocol: `POST /v1/chat/completions` with
//! `stream: true` answers `text/event-stream` chunks of `choices[0].delta.content`, a usage
//! chunk, then `data: [DONE]`; errors are OpenAI's JSON bodies. The last user message picks
//! a fault: `[429]` (with Retry-After), `[500]`, `[stall]` (two chunks, then silence), `[slow]`
//! (a chunk every 100 ms). Otherwise it answers from the system message's concept line, so
//! a test sees the grounding reach the model.
#![allow(dead_code)]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

#[derive(Clone, Default)]
pub struct Seen {
    /// Every request body, in order.
    pub requests: Arc<Mutex<Vec<Value>>>,
    /// Every Authorization header, in order.
    pub auth: Arc<Mutex<Vec<String>>>,
    /// Milliseconds to wait after a sentence's last word (see `pause_between_sentences`).
    pub pause_ms: Arc<std::sync::atomic::AtomicU64>,
}

pub struct FakeModel {
    pub base_url: String,
    pub seen: Seen,
}

impl FakeModel {
    /// From now on, pause this long after each sentence of an answer (a model thinking
    /// between sentences), so a test can see what arrives before the answer ends.
    pub fn pause_between_sentences(&self, pause: Duration) {
        self.seen.pause_ms.store(
            u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
            std::sync::atomic::Ordering::SeqCst,
        );
    }
}

impl FakeModel {
    pub async fn start() -> Self {
        let seen = Seen::default();
        let app = Router::new()
            .route("/v1/chat/completions", post(completions))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base_url = format!("http://{}/v1", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeModel { base_url, seen }
    }

    pub fn requests(&self) -> Vec<Value> {
        self.seen.requests.lock().expect("lock").clone()
    }
}

/// The words of the answer to a question about `concept`.
pub fn answer_words(concept: &str) -> Vec<String> {
    format!("Let's work on {concept}. First, what do you already know?")
        .split_inclusive(' ')
        .map(str::to_string)
        .collect()
}

fn chunk(text: &str) -> Bytes {
    let v = json!({"id": "c1", "object": "chat.completion.chunk", "model": "fake",
                   "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]});
    Bytes::from(format!("data: {v}\n\n"))
}

async fn completions(State(seen): State<Seen>, headers: HeaderMap, body: String) -> Response {
    let req: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    seen.requests.lock().expect("lock").push(req.clone());
    seen.auth.lock().expect("lock").push(
        headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
    );
    if req["stream"] != json!(true) {
        return (StatusCode::BAD_REQUEST, "this fake only streams").into_response();
    }
    let messages = req["messages"].as_array().cloned().unwrap_or_default();
    let last = messages
        .last()
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_string();
    let system = messages
        .first()
        .and_then(|m| m["content"].as_str())
        .unwrap_or("");
    let concept = course_material(system)["summary"]
        .as_str()
        .unwrap_or("nothing")
        .to_string();
    if last.contains("[429]") {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "7")],
            axum::Json(json!({"error": {"message": "Rate limit reached", "type": "requests"}})),
        )
            .into_response();
    }
    if last.contains("[500]") {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(
                json!({"error": {"message": "The server had an error", "type": "server_error"}}),
            ),
        )
            .into_response();
    }
    let words = answer_words(&concept);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(8);
    let stall = last.contains("[stall]");
    let slow = last.contains("[slow]");
    let pause = Duration::from_millis(seen.pause_ms.load(std::sync::atomic::Ordering::SeqCst));
    tokio::spawn(async move {
        let _ = tx.send(Ok(Bytes::from(": keep-alive\n\n"))).await;
        for (i, w) in words.iter().enumerate() {
            if stall && i == 2 {
                // Silence with the connection open, as a stuck upstream does.
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            if slow {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if tx.send(Ok(chunk(w))).await.is_err() {
                return;
            }
            if !pause.is_zero() && w.trim_end().ends_with(['.', '?', '!']) {
                tokio::time::sleep(pause).await;
            }
        }
        let usage = json!({"id": "c1", "object": "chat.completion.chunk", "choices": [],
                           "usage": {"prompt_tokens": 50, "completion_tokens": 12, "total_tokens": 62}});
        let _ = tx.send(Ok(Bytes::from(format!("data: {usage}\n\n")))).await;
        let _ = tx.send(Ok(Bytes::from("data: [DONE]\n\n"))).await;
    });
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The course material a system prompt quotes (the JSON between its markers); Null when
/// there is none.
pub fn course_material(system: &str) -> Value {
    system
        .split_once("<course-material>")
        .and_then(|(_, rest)| rest.rsplit_once("</course-material>"))
        .and_then(|(inside, _)| serde_json::from_str(inside).ok())
        .unwrap_or(Value::Null)
}

/// Server-Sent Events as (event, JSON data), from a whole response body.
pub fn sse_events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter_map(|block| {
            let mut name = "message".to_string();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event:") {
                    name = n.trim().to_string();
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.trim_start());
                }
            }
            (!data.is_empty()).then(|| {
                (
                    name,
                    serde_json::from_str(&data).unwrap_or(Value::String(data)),
                )
            })
        })
        .collect()
}
