//! An OpenAI-compatible Chat Completions endpoint, streamed (`stream: true`): OpenAI itself,
//! Bedrock's OpenAI-compatible endpoint, vLLM, llama.cpp's server. Only what every one of
//! them speaks is used: `messages`, `max_tokens`, SSE chunks of `choices[0].delta.content`
//! ended by `data: [DONE]`, and `usage` when the server sends it.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

/// Where the model is and how long it may take.
#[derive(Clone)]
pub struct ModelConfig {
    /// e.g. `https://api.openai.com/v1`; `/chat/completions` is appended.
    pub base_url: String,
    pub model: String,
    /// Sent as a bearer token; never logged. None for servers without auth.
    pub api_key: Option<String>,
    /// The longest a whole answer may take.
    pub timeout: Duration,
    /// The longest the model may go quiet mid-answer (a stalled stream).
    pub stall: Duration,
    pub max_tokens: u32,
}

impl std::fmt::Debug for ModelConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .field("timeout", &self.timeout)
            .field("stall", &self.stall)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Message {
    pub role: &'static str,
    pub content: String,
}

/// What the model says, piece by piece.
#[derive(Debug, PartialEq)]
pub enum Piece {
    Text(String),
    /// Tokens the model counted (prompt + completion), when it says.
    Usage(i64),
}

/// Why an answer stopped early.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    #[error("the model is rate limited; retry in {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error("the model answered HTTP {status}: {message}")]
    Status { status: u16, message: String },
    #[error("the model sent nothing for {0} s")]
    Stalled(u64),
    #[error("the answer took longer than {0} s")]
    TimedOut(u64),
    #[error("cannot reach the model: {0}")]
    Unreachable(String),
    #[error("the model sent something unreadable: {0}")]
    Malformed(String),
}

impl ModelError {
    /// The SSE `error` event's code.
    pub fn code(&self) -> &'static str {
        match self {
            ModelError::RateLimited { .. } => "model_rate_limited",
            ModelError::Status { .. } => "model_error",
            ModelError::Stalled(_) => "model_stalled",
            ModelError::TimedOut(_) => "model_timeout",
            ModelError::Unreachable(_) => "model_unreachable",
            ModelError::Malformed(_) => "model_malformed",
        }
    }
}

#[derive(Clone)]
pub struct Model {
    config: ModelConfig,
    http: reqwest::Client,
}

impl Model {
    pub fn new(config: ModelConfig) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        Ok(Model { config, http })
    }

    /// Streams the answer into `out`; returns when the model is done or has failed. Every
    /// piece sent before a failure stands (the caller keeps what arrived).
    pub async fn answer(
        &self,
        messages: &[Message],
        out: &mpsc::Sender<Piece>,
    ) -> Result<(), ModelError> {
        let timeout = self.config.timeout;
        match tokio::time::timeout(timeout, self.stream(messages, out)).await {
            Ok(r) => r,
            Err(_) => Err(ModelError::TimedOut(timeout.as_secs())),
        }
    }

    async fn stream(
        &self,
        messages: &[Message],
        out: &mpsc::Sender<Piece>,
    ) -> Result<(), ModelError> {
        let url = format!(
            "{}/chat/completions",
            self.config.base_url.trim_end_matches('/')
        );
        let body = serde_json::json!({
            "model": self.config.model,
            "messages": messages,
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_tokens": self.config.max_tokens,
        });
        let mut req = self.http.post(&url).json(&body);
        if let Some(key) = &self.config.api_key {
            req = req.bearer_auth(key);
        }
        let stall = self.config.stall;
        let mut resp = match tokio::time::timeout(stall, req.send()).await {
            Err(_) => return Err(ModelError::Stalled(stall.as_secs())),
            Ok(Err(e)) => return Err(ModelError::Unreachable(without_url(e))),
            Ok(Ok(r)) => r,
        };
        let status = resp.status();
        if status.as_u16() == 429 {
            return Err(ModelError::RateLimited {
                retry_after: retry_after(&resp),
            });
        }
        if !status.is_success() {
            let text = tokio::time::timeout(stall, resp.text())
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
            return Err(ModelError::Status {
                status: status.as_u16(),
                message: error_message(&text),
            });
        }
        let mut events = SseParser::default();
        loop {
            let chunk = match tokio::time::timeout(stall, resp.chunk()).await {
                Err(_) => return Err(ModelError::Stalled(stall.as_secs())),
                Ok(Err(e)) => return Err(ModelError::Unreachable(without_url(e))),
                // The server closed the stream without `[DONE]`: what came is the answer.
                Ok(Ok(None)) => return Ok(()),
                Ok(Ok(Some(c))) => c,
            };
            for data in events.feed(&chunk) {
                if data.trim() == "[DONE]" {
                    return Ok(());
                }
                for piece in pieces(&data)? {
                    // A client gone away is no reason to stop: the answer is still saved.
                    let _ = out.send(piece).await;
                }
            }
        }
    }
}

/// reqwest's errors name the URL; the base URL is configuration, fine to show, but a key
/// in a query string would not be — show the error's kind and cause only. (Also the voice
/// engine's: voice/openai.rs.)
pub(crate) fn without_url(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut s = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

/// A 429's `Retry-After` in seconds; 20 when it names none (or a date).
pub(crate) fn retry_after(resp: &reqwest::Response) -> u64 {
    resp.headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(20)
}

/// The `error.message` of an OpenAI-style error body, else the body's start.
pub(crate) fn error_message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| body.chars().take(200).collect())
}

/// The text and usage in one chunk's JSON.
fn pieces(data: &str) -> Result<Vec<Piece>, ModelError> {
    let v: Value = serde_json::from_str(data).map_err(|e| {
        ModelError::Malformed(format!(
            "{e} in {}",
            data.chars().take(80).collect::<String>()
        ))
    })?;
    let mut out = Vec::new();
    if let Some(text) = v["choices"][0]["delta"]["content"].as_str()
        && !text.is_empty()
    {
        out.push(Piece::Text(text.to_string()));
    }
    if let Some(total) = v["usage"]["total_tokens"].as_i64() {
        out.push(Piece::Usage(total));
    }
    Ok(out)
}

/// Server-Sent Events framing: events end at a blank line; `data:` lines join with `\n`.
/// Comments (`:`) and other fields are skipped.
#[derive(Default)]
pub struct SseParser {
    buf: Vec<u8>,
}

impl SseParser {
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        self.buf.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some((end, sep)) = find_blank_line(&self.buf) {
            let raw: Vec<u8> = self.buf.drain(..end + sep).collect();
            let text = String::from_utf8_lossy(&raw[..end]);
            let data: Vec<&str> = text
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            if !data.is_empty() {
                events.push(data.join("\n"));
            }
        }
        events
    }
}

/// Where the first blank line starts, and the separator's length (`\n\n` or `\r\n\r\n`).
fn find_blank_line(buf: &[u8]) -> Option<(usize, usize)> {
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    let crlf = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_split_across_chunks() {
        let mut p = SseParser::default();
        assert!(p.feed(b"data: {\"a\"").is_empty());
        assert_eq!(
            p.feed(b":1}\n\n: keep-alive\n\ndata: [DONE]\r\n\r\n"),
            vec!["{\"a\":1}", "[DONE]"]
        );
        assert_eq!(
            p.feed(b"event: x\ndata: one\ndata: two\n\n"),
            vec!["one\ntwo"]
        );
    }

    #[test]
    fn chunk_text_and_usage() {
        let text = r#"{"choices":[{"index":0,"delta":{"content":"Hi"}}]}"#;
        assert_eq!(pieces(text), Ok(vec![Piece::Text("Hi".into())]));
        let usage =
            r#"{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}"#;
        assert_eq!(pieces(usage), Ok(vec![Piece::Usage(12)]));
        let role_only = r#"{"choices":[{"delta":{"role":"assistant"}}]}"#;
        assert_eq!(pieces(role_only), Ok(vec![]));
        assert!(matches!(pieces("{not json"), Err(ModelError::Malformed(_))));
    }

    #[test]
    fn error_bodies() {
        assert_eq!(
            error_message(r#"{"error":{"message":"bad key","type":"auth"}}"#),
            "bad key"
        );
        assert_eq!(error_message("upstream down"), "upstream down");
    }
}
