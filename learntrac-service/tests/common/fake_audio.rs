//! A test double of OpenAI's audio API (no speech model can run here), faithful to what the
//! real one checks:
//! - `POST /v1/audio/transcriptions`: `multipart/form-data` with a `file` part (a filename,
//!   audio content), a `model`, an optional `response_format` (`json`, `text`,
//!   `verbose_json`; `json` answers `{"text"}`) and `prompt`; anything else missing or wrong
//!   is a 400 with OpenAI's error body.
//! - `POST /v1/audio/speech`: JSON `model`, `input` (1–4096 characters), `voice`,
//!   `response_format` (`wav` answers a real WAV: silence as long as the text would take).
//!
//! The model's name picks a fault: `…-429` (Retry-After: 7), `…-500` (OpenAI's server-error
//! body), `…-stall` (no answer at all). Otherwise transcription answers `transcript`.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// One multipart part as the double read it.
#[derive(Debug, Clone)]
pub struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub data: Vec<u8>,
}

#[derive(Clone, Default)]
pub struct Heard {
    /// Each transcription request's parts.
    pub transcriptions: Arc<Mutex<Vec<Vec<Part>>>>,
    /// Each speech request's JSON.
    pub speech: Arc<Mutex<Vec<Value>>>,
    pub auth: Arc<Mutex<Vec<String>>>,
    /// Milliseconds each answer waits (a fixed engine latency, for the benchmark).
    pub latency_ms: Arc<std::sync::atomic::AtomicU64>,
}

impl Heard {
    async fn wait(&self) {
        let ms = self.latency_ms.load(std::sync::atomic::Ordering::SeqCst);
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
    }

    fn note_auth(&self, headers: &HeaderMap) {
        self.auth.lock().expect("lock").push(
            headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string(),
        );
    }
}

#[derive(Clone)]
struct Double {
    heard: Heard,
    transcript: String,
}

pub struct FakeAudio {
    pub base_url: String,
    pub heard: Heard,
}

impl FakeAudio {
    /// From now on each transcription and each speech request takes `latency`.
    pub fn answer_after(&self, latency: Duration) {
        self.heard.latency_ms.store(
            u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
            std::sync::atomic::Ordering::SeqCst,
        );
    }

    /// A server that hears `transcript` in whatever it is sent.
    pub async fn start(transcript: &str) -> Self {
        let heard = Heard::default();
        let app = Router::new()
            .route("/v1/audio/transcriptions", post(transcriptions))
            .route("/v1/audio/speech", post(speech))
            .with_state(Double {
                heard: heard.clone(),
                transcript: transcript.to_string(),
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base_url = format!("http://{}/v1", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeAudio { base_url, heard }
    }
}

fn invalid(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": null}})),
    )
        .into_response()
}

/// The fault a model's name asks for, if any.
async fn fault(model: &str) -> Option<Response> {
    if model.ends_with("-429") {
        return Some(
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "7")],
                axum::Json(json!({"error": {"message": "Rate limit reached for requests", "type": "requests", "code": "rate_limit_exceeded"}})),
            )
                .into_response(),
        );
    }
    if model.ends_with("-500") {
        return Some(
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(json!({"error": {"message": "The server had an error while processing your request. Sorry about that!", "type": "server_error"}})),
            )
                .into_response(),
        );
    }
    if model.ends_with("-stall") {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    None
}

/// Parses `multipart/form-data` as a server must: the boundary from Content-Type, parts
/// split on `--boundary`, each part's headers, the closing `--boundary--`.
pub fn parse_multipart(content_type: &str, body: &[u8]) -> Result<Vec<Part>, String> {
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))
        .map(|b| b.trim_matches('"').to_string())
        .filter(|_| content_type.trim_start().starts_with("multipart/form-data"))
        .ok_or("Content-Type is not multipart/form-data with a boundary")?;
    let delimiter = format!("--{boundary}");
    let find = |hay: &[u8], from: usize, needle: &[u8]| {
        hay[from..]
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|i| i + from)
    };
    let mut parts = Vec::new();
    let mut at = find(body, 0, delimiter.as_bytes()).ok_or("no opening boundary")?;
    loop {
        at += delimiter.len();
        if body[at..].starts_with(b"--") {
            return Ok(parts); // the closing boundary
        }
        if !body[at..].starts_with(b"\r\n") {
            return Err("a boundary not followed by CRLF".into());
        }
        at += 2;
        let head_end = find(body, at, b"\r\n\r\n").ok_or("a part without headers' end")?;
        let head = String::from_utf8_lossy(&body[at..head_end]).to_string();
        let next = find(body, head_end + 4, format!("\r\n{delimiter}").as_bytes())
            .ok_or("a part without a following boundary")?;
        let data = body[head_end + 4..next].to_vec();
        let mut name = None;
        let mut filename = None;
        let mut content_type = None;
        for line in head.split("\r\n") {
            let (k, v) = line.split_once(':').ok_or("a malformed part header")?;
            if k.eq_ignore_ascii_case("content-disposition") {
                for attr in v.split(';').map(str::trim) {
                    if let Some(n) = attr.strip_prefix("name=") {
                        name = Some(n.trim_matches('"').to_string());
                    } else if let Some(f) = attr.strip_prefix("filename=") {
                        filename = Some(f.trim_matches('"').to_string());
                    }
                }
            } else if k.eq_ignore_ascii_case("content-type") {
                content_type = Some(v.trim().to_string());
            }
        }
        parts.push(Part {
            name: name.ok_or("a part without a name")?,
            filename,
            content_type,
            data,
        });
        at = next + 2;
    }
}

async fn transcriptions(State(d): State<Double>, headers: HeaderMap, body: Bytes) -> Response {
    d.heard.note_auth(&headers);
    d.heard.wait().await;
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let parts = match parse_multipart(ct, &body) {
        Ok(p) => p,
        Err(e) => return invalid(&format!("Could not parse multipart form: {e}")),
    };
    d.heard
        .transcriptions
        .lock()
        .expect("lock")
        .push(parts.clone());
    let field = |n: &str| parts.iter().find(|p| p.name == n);
    let text = |n: &str| field(n).map(|p| String::from_utf8_lossy(&p.data).to_string());
    let Some(file) = field("file") else {
        return invalid("you must provide a file");
    };
    if file.filename.as_deref().unwrap_or("").is_empty() {
        return invalid("the file part needs a filename (its extension names the format)");
    }
    let Some(model) = text("model").filter(|m| !m.is_empty()) else {
        return invalid("you must provide a model parameter");
    };
    if let Some(r) = fault(&model).await {
        return r;
    }
    if !file.data.starts_with(b"RIFF") {
        return invalid(
            "Invalid file format. Supported formats: ['flac', 'm4a', 'mp3', 'mp4', 'mpeg', 'mpga', 'oga', 'ogg', 'wav', 'webm']",
        );
    }
    match text("response_format").as_deref().unwrap_or("json") {
        "json" => axum::Json(json!({"text": d.transcript})).into_response(),
        "text" => d.transcript.clone().into_response(),
        "verbose_json" => {
            axum::Json(json!({"text": d.transcript, "language": "english", "segments": []}))
                .into_response()
        }
        other => invalid(&format!("response_format `{other}` is not supported here")),
    }
}

async fn speech(State(d): State<Double>, headers: HeaderMap, body: Bytes) -> Response {
    d.heard.note_auth(&headers);
    d.heard.wait().await;
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return invalid("We could not parse the JSON body of your request.");
    };
    d.heard.speech.lock().expect("lock").push(req.clone());
    let model = req["model"].as_str().unwrap_or("");
    if model.is_empty() {
        return invalid("you must provide a model parameter");
    }
    if let Some(r) = fault(model).await {
        return r;
    }
    let input = req["input"].as_str().unwrap_or("");
    if input.is_empty() || input.chars().count() > 4096 {
        return invalid("input must be 1 to 4096 characters");
    }
    if req["voice"].as_str().unwrap_or("").is_empty() {
        return invalid("you must provide a voice");
    }
    if req["response_format"] != "wav" {
        return invalid("this double speaks only wav");
    }
    // 24 kHz mono 16-bit silence, a twentieth of a second a character.
    let samples = input.chars().count() * 1200;
    let data = samples * 2;
    let mut wav = Vec::with_capacity(44 + data);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&u32::try_from(36 + data).unwrap_or(u32::MAX).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes());
    wav.extend_from_slice(&24_000u32.to_le_bytes());
    wav.extend_from_slice(&48_000u32.to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&u32::try_from(data).unwrap_or(u32::MAX).to_le_bytes());
    wav.resize(44 + data, 0);
    ([("content-type", "audio/wav")], wav).into_response()
}
