//! `GET /api/voice/ws?concept=ID[&conversation_id=N]`: the voice tutor on a WebSocket.
//!
//! The browser streams the student's question as binary frames of 16 kHz mono 16-bit PCM,
//! then sends `{"type":"end"}`. The service answers with JSON text frames — `transcript`,
//! `conversation`, `delta`s of the tutor's text, `done` or `error` — and then
//! `{"type":"audio","format":"audio/wav","bytes":N}` followed by one binary frame: the
//! answer spoken. The conversation is the chat's (same tables, same limits), so a dropped
//! socket resumes by reconnecting with `conversation_id`. The server pings every 20 s.
//! A browser cannot set headers on a WebSocket: it signs in by Trac's cookie, or offers
//! the subprotocols `learntrac` and `bearer.<token>` (auth.rs), never a token in the URL.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::ApiQuery;
use super::chat::{own_concept, prepare, tutor};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::trac::{self, Concept};
use crate::tutor::{self, Tutor};
use crate::voice::{MAX_UTTERANCE_SECONDS, SAMPLE_RATE, Voice, wav};

const PING_EVERY: Duration = Duration::from_secs(20);
/// A frame larger than a second of audio is not what the page sends.
const MAX_FRAME: usize = 256 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoiceQuery {
    pub concept: i64,
    #[serde(default)]
    pub conversation_id: Option<i64>,
}

pub async fn session(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<VoiceQuery>,
    upgrade: WebSocketUpgrade,
) -> ApiResult<Response> {
    let voice = state.voice.clone().ok_or_else(|| {
        ApiError::NotConfigured(
            "the voice tutor is not configured: set VOICE_ENGINE=local with espeak-ng and PocketSphinx installed"
                .into(),
        )
    })?;
    let tutor = tutor(&state)?;
    if q.concept < 1 {
        return Err(ApiError::BadRequest(format!(
            "concept ids are positive ticket numbers, not {}",
            q.concept
        )));
    }
    let concept = own_concept(&state, &caller, q.concept).await?;
    let student = caller.user;
    Ok(upgrade
        .protocols(["learntrac"])
        .max_frame_size(MAX_FRAME)
        .max_message_size(MAX_FRAME)
        .on_upgrade(move |socket| async move {
            let mut s = Session {
                state,
                voice,
                tutor,
                concept,
                student,
                conversation_id: q.conversation_id,
                socket,
            };
            s.run().await;
        }))
}

struct Session {
    state: AppState,
    voice: Arc<Voice>,
    tutor: Arc<Tutor>,
    concept: Concept,
    student: String,
    conversation_id: Option<i64>,
    socket: WebSocket,
}

impl Session {
    async fn send(&mut self, v: Value) -> bool {
        self.socket
            .send(Message::Text(v.to_string().into()))
            .await
            .is_ok()
    }

    async fn error(&mut self, code: &str, message: &str) -> bool {
        self.send(json!({"type": "error", "code": code, "message": message}))
            .await
    }

    async fn run(&mut self) {
        let mut audio: Vec<i16> = Vec::new();
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        if !self
            .send(json!({"type": "ready", "sample_rate": SAMPLE_RATE}))
            .await
        {
            return;
        }
        loop {
            let msg = tokio::select! {
                _ = ping.tick() => {
                    if self.socket.send(Message::Ping(Default::default())).await.is_err() {
                        return;
                    }
                    continue;
                }
                msg = self.socket.recv() => msg,
            };
            let ok = match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(Message::Binary(b))) => {
                    audio.extend(wav::samples(&b));
                    if audio.len() > MAX_UTTERANCE_SECONDS * SAMPLE_RATE as usize {
                        audio.clear();
                        self.error(
                            "too_long",
                            &format!("a question is at most {MAX_UTTERANCE_SECONDS} s; ask again"),
                        )
                        .await
                    } else {
                        true
                    }
                }
                Some(Ok(Message::Text(t))) => match serde_json::from_str::<Value>(&t) {
                    Ok(v) if v["type"] == "end" => {
                        let pcm = std::mem::take(&mut audio);
                        self.utterance(&pcm).await
                    }
                    Ok(v) if v["type"] == "cancel" => {
                        audio.clear();
                        true
                    }
                    _ => {
                        self.error("bad_message", "send audio frames, then {\"type\":\"end\"}")
                            .await
                    }
                },
                Some(Ok(_)) => true, // pings and pongs
            };
            if !ok {
                return;
            }
        }
    }

    /// Recognises, asks the tutor, streams its text and speaks its answer. False when the
    /// socket is gone.
    async fn utterance(&mut self, pcm: &[i16]) -> bool {
        if pcm.len() < SAMPLE_RATE as usize / 4 {
            return self.error("no_speech", "no audio arrived before end").await;
        }
        let summaries = match trac::student_concepts(&self.state.db, &self.student, &[]).await {
            Ok(cs) => cs.into_iter().map(|c| c.summary).collect::<Vec<_>>(),
            Err(e) => {
                return self
                    .error("unavailable", &ApiError::from(e).to_string())
                    .await;
            }
        };
        let heard = match self.voice.recognizer.transcribe(pcm, &summaries).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "speech recognition failed");
                return self
                    .error(
                        "recognition_failed",
                        "your question could not be heard just now; try again",
                    )
                    .await;
            }
        };
        if heard.is_empty() {
            return self
                .error(
                    "not_understood",
                    "nothing was recognised; ask about one of your concepts",
                )
                .await;
        }
        if !self
            .send(json!({"type": "transcript", "text": heard}))
            .await
        {
            return false;
        }
        let (turn, question_id) = match prepare(
            &self.state,
            &self.tutor,
            &self.student,
            &self.concept,
            self.conversation_id,
            &heard,
        )
        .await
        {
            Ok(t) => t,
            Err(e) => {
                let code = match &e {
                    ApiError::TooManyRequests { .. } => "too_many_requests",
                    ApiError::NotFound(_) => "not_found",
                    _ => "unavailable",
                };
                return self.error(code, &e.to_string()).await;
            }
        };
        self.conversation_id = Some(turn.conversation_id);
        let conversation = json!({"type": "conversation", "conversation_id": turn.conversation_id, "question_id": question_id});
        if !self.send(conversation).await {
            return false;
        }
        let (tx, mut rx) = mpsc::channel(64);
        // The answer is saved even if the socket drops mid-way (tutor::answer runs to its end).
        tokio::spawn(tutor::answer(
            self.state.db.clone(),
            self.tutor.clone(),
            turn,
            tx,
        ));
        let mut text = String::new();
        let mut finished = false;
        while let Some((name, mut data)) = rx.recv().await {
            if name == "delta" {
                text.push_str(data["text"].as_str().unwrap_or(""));
            }
            finished |= name == "done";
            data["type"] = json!(name);
            if !self.send(data).await {
                return false;
            }
        }
        if !finished || text.trim().is_empty() {
            return true;
        }
        match self.voice.synthesizer.speak(&text).await {
            Ok(wav) => {
                self.send(json!({"type": "audio", "format": "audio/wav", "bytes": wav.len()}))
                    .await
                    && self.socket.send(Message::Binary(wav.into())).await.is_ok()
            }
            Err(e) => {
                tracing::warn!(error = %e, "speech synthesis failed");
                self.error(
                    "synthesis_failed",
                    "the answer could not be spoken; it is shown in writing",
                )
                .await
            }
        }
    }
}
