//! `GET /api/voice/ws?concept=ID[&conversation_id=N]`: the voice tutor on a WebSocket.
//!
//! The browser streams the student's question as binary frames of 16 kHz mono 16-bit PCM,
//! then sends `{"type":"end"}`. The service answers with JSON text frames — `hearing`
//! (what an engine that listens while the student speaks has heard so far), `transcript`,
//! `conversation`, `delta`s of the tutor's text, `done` or `error` — and, sentence by
//! sentence as the text arrives, `{"type":"audio","format":"audio/wav","bytes":N,"part":K}`
//! each followed by one binary frame, then `spoken`. The conversation is the chat's (same
//! tables, same limits), so a dropped socket resumes by reconnecting with
//! `conversation_id`. The server pings every 20 s.
//! A browser cannot set headers on a WebSocket: it signs in by Trac's cookie, or offers
//! the subprotocols `learntrac` and `bearer.<token>` (auth.rs), never a token in the URL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::ApiQuery;
use super::chat::{VOICE_PROMPT_RESERVE, now_secs, own_concept, prepare, reserve, tutor};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::limits::{EngineSlot, Refused, SOCKET_LIFETIME, SOCKETS_PER_STUDENT, SocketSlot};
use crate::state::AppState;
use crate::trac::{self, Concept};
use crate::tutor::{self, Tutor, store};
use crate::voice::{Listening, MAX_UTTERANCE_SECONDS, SAMPLE_RATE, SpeechError, Voice, wav};

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
    let slot = state.limits.socket(&caller.user).map_err(|why| match why {
        Refused::Student => ApiError::TooManyRequests {
            message: format!(
                "you already have {SOCKETS_PER_STUDENT} voice connections open; close another tab first"
            ),
            retry_after: 10,
        },
        Refused::Task => ApiError::TooManyRequests {
            message: "the voice tutor is full right now; try again in a minute".into(),
            retry_after: 60,
        },
    })?;
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
                caller,
                conversation_id: q.conversation_id,
                socket,
                listening: None,
                deaf: false,
                _slot: slot,
            };
            s.run().await;
        }))
}

struct Session {
    state: AppState,
    voice: Arc<Voice>,
    tutor: Arc<Tutor>,
    concept: Concept,
    caller: Caller,
    conversation_id: Option<i64>,
    socket: WebSocket,
    /// The utterance being heard as it is spoken (engines that can), and its engine.
    listening: Option<(Listening, EngineSlot)>,
    /// The rest of this utterance is not heard: refused at its first frame (the page was
    /// told why), or too long.
    deaf: bool,
    /// Held while the socket is open (limits.rs).
    _slot: SocketSlot,
}

/// How a session ends, for the page (a close frame's code and reason).
enum Ended {
    /// The socket went away, or answered no more.
    Gone,
    /// Closed by the service: WebSocket close code and the page's explanation.
    Closed(u16, &'static str),
}

impl Session {
    async fn send(&mut self, v: Value) -> bool {
        self.deliver(Message::Text(v.to_string().into())).await
    }

    /// Sends one frame; false when the socket is gone or the page stopped reading (a
    /// frozen tab must not hold its slots, its engine or its answer for ever).
    async fn deliver(&mut self, m: Message) -> bool {
        matches!(
            tokio::time::timeout(SEND_WAIT, self.socket.send(m)).await,
            Ok(Ok(()))
        )
    }

    async fn error(&mut self, code: &str, message: &str) -> bool {
        self.send(json!({"type": "error", "code": code, "message": message}))
            .await
    }

    async fn run(&mut self) {
        if let Ended::Closed(code, reason) = self.serve().await {
            let _ = self.error("closed", reason).await;
            let _ = self
                .deliver(Message::Close(Some(CloseFrame {
                    code,
                    reason: reason.into(),
                })))
                .await;
        }
    }

    async fn serve(&mut self) -> Ended {
        let mut audio: Vec<i16> = Vec::new();
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        let opened = Instant::now();
        let mut heard_at = Instant::now();
        let idle = self.state.limits.socket_idle;
        if !self
            .send(json!({"type": "ready", "sample_rate": SAMPLE_RATE}))
            .await
        {
            return Ended::Gone;
        }
        loop {
            let idle_until = (heard_at + idle).min(opened + SOCKET_LIFETIME);
            let msg = tokio::select! {
                _ = ping.tick() => {
                    if !self.deliver(Message::Ping(Default::default())).await {
                        return Ended::Gone;
                    }
                    continue;
                }
                _ = tokio::time::sleep_until(idle_until.into()) => {
                    return Ended::Closed(
                        CLOSE_GOING_AWAY,
                        if heard_at + idle <= opened + SOCKET_LIFETIME {
                            "the voice connection was idle and closed; it reconnects when you ask"
                        } else {
                            "the voice connection was open a long time and closed; it reconnects when you ask"
                        },
                    );
                }
                heard = heard_so_far(&mut self.listening) => {
                    if !self.send(json!({"type": "hearing", "text": heard})).await {
                        return Ended::Gone;
                    }
                    continue;
                }
                msg = self.socket.recv() => msg,
            };
            // Only the page's own messages count: pongs answer our pings by themselves.
            if matches!(msg, Some(Ok(Message::Binary(_) | Message::Text(_)))) {
                heard_at = Instant::now();
            }
            let ok = match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return Ended::Gone,
                Some(Ok(Message::Binary(_))) if self.deaf => true,
                Some(Ok(Message::Binary(b))) => {
                    audio.extend(wav::samples(&b));
                    if audio.len() > MAX_UTTERANCE_SECONDS * SAMPLE_RATE as usize {
                        audio = Vec::new();
                        self.listening = None;
                        self.deaf = true;
                        self.error(
                            "too_long",
                            &format!("a question is at most {MAX_UTTERANCE_SECONDS} s; ask again"),
                        )
                        .await
                    } else {
                        match self.hear(&b).await {
                            Ok(ok) => ok,
                            Err(ended) => return ended,
                        }
                    }
                }
                Some(Ok(Message::Text(t))) => match serde_json::from_str::<Value>(&t) {
                    Ok(v) if v["type"] == "end" => {
                        let pcm = std::mem::take(&mut audio);
                        let mut listening = self.listening.take();
                        // The engine finishes while the utterance is checked and counted.
                        if let Some((l, _)) = &mut listening {
                            l.end();
                        }
                        if std::mem::take(&mut self.deaf) {
                            true
                        } else {
                            match self.utterance(&pcm, listening).await {
                                Ok(ok) => ok,
                                Err(ended) => return ended,
                            }
                        }
                    }
                    Ok(v) if v["type"] == "cancel" => {
                        audio = Vec::new();
                        self.listening = None;
                        self.deaf = false;
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
                return Ended::Gone;
            }
        }
    }

    /// Whether the student may still talk about this concept: signed in (the token not
    /// expired, the Trac session not logged out) and still its owner — checked afresh for
    /// every utterance, since a socket can outlive both.
    /// (A free function of the parts it reads: `&Session` is not `Send`, its socket not
    /// being `Sync`.)
    async fn still_allowed(state: &AppState, caller: &Caller, concept: i64) -> Result<(), Ended> {
        match caller.still_signed_in(state).await {
            Ok(true) => {}
            Ok(false) => {
                return Err(Ended::Closed(
                    CLOSE_POLICY,
                    "your sign-in has ended; sign in again to keep talking",
                ));
            }
            // Not known to hold: closed (the page reconnects), never assumed.
            Err(_) => {
                return Err(Ended::Closed(
                    CLOSE_TRY_AGAIN,
                    "your sign-in could not be checked just now; ask again in a moment",
                ));
            }
        }
        match own_concept(state, caller, concept).await {
            Ok(_) => Ok(()),
            Err(ApiError::NotFound(_) | ApiError::Forbidden(_)) => Err(Ended::Closed(
                CLOSE_POLICY,
                "this concept is no longer yours; open your page again",
            )),
            Err(_) => Err(Ended::Closed(
                CLOSE_TRY_AGAIN,
                "your concept could not be checked just now; ask again in a moment",
            )),
        }
    }

    /// A frame of the utterance, for an engine that hears while the student speaks: at the
    /// first, the checks the utterance will meet at its end that can be made now (signed
    /// in, still the owner, speech left today, an engine free), so that no audio leaves for
    /// a student who may not ask; then every frame goes to the engine. Ok(false) when the
    /// socket is gone.
    async fn hear(&mut self, frame: &[u8]) -> Result<bool, Ended> {
        if !self.voice.recognizer.listens() {
            return Ok(true);
        }
        if self.listening.is_none() {
            Self::still_allowed(&self.state, &self.caller, self.concept.id).await?;
            let day = tutor::day_of(now_secs());
            match store::audio_left(
                &self.state.db,
                &self.caller.user,
                day,
                self.voice.daily_seconds,
            )
            .await
            {
                Ok(true) => {}
                Ok(false) => {
                    self.deaf = true;
                    return Ok(self.refused(self.out_of_speech()).await);
                }
                Err(e) => {
                    self.deaf = true;
                    return Ok(self.refused(ApiError::from(e)).await);
                }
            }
            let Some(engine) = self.state.limits.engine(&self.caller.user).await else {
                self.deaf = true;
                return Ok(self.error("busy", BUSY).await);
            };
            let Some(listening) = self.voice.recognizer.listen() else {
                return Ok(true);
            };
            self.listening = Some((listening, engine));
        }
        if let Some((listening, _)) = &self.listening {
            listening.hear(frame);
        }
        Ok(true)
    }

    /// Today's speech is used up: the page's words, and when it comes back.
    fn out_of_speech(&self) -> ApiError {
        let minutes = self.voice.daily_seconds / 60;
        let limit = if minutes >= 2 {
            format!("{minutes} minutes")
        } else {
            format!("{} seconds", self.voice.daily_seconds)
        };
        ApiError::TooManyRequests {
            message: format!(
                "today's voice limit ({limit} of speech) is used up; it resets at midnight UTC, and you can still type your question"
            ),
            retry_after: tutor::seconds_to_midnight(now_secs()),
        }
    }

    /// Recognises (or, heard while spoken, finishes hearing), asks the tutor, streams its
    /// text and speaks its answer. Ok(false) when the socket is gone; Err when the session
    /// must end.
    async fn utterance(
        &mut self,
        pcm: &[i16],
        listening: Option<(Listening, EngineSlot)>,
    ) -> Result<bool, Ended> {
        if pcm.len() < SAMPLE_RATE as usize / 4 {
            return Ok(self.error("no_speech", "no audio arrived before end").await);
        }
        Self::still_allowed(&self.state, &self.caller, self.concept.id).await?;
        // Counted before recognition: listening costs the service as much as answering.
        let reservation = match reserve(
            &self.state,
            &self.tutor,
            &self.caller.user,
            VOICE_PROMPT_RESERVE,
        )
        .await
        {
            Ok(r) => r,
            Err(e) => return Ok(self.refused(e).await),
        };
        // Seconds of speech, counted (rounded up) with the request, against the day's.
        let seconds = i64::try_from(pcm.len().div_ceil(SAMPLE_RATE as usize)).unwrap_or(i64::MAX);
        match store::count_audio(
            &self.state.db,
            &self.caller.user,
            reservation.day,
            seconds,
            self.voice.daily_seconds,
        )
        .await
        {
            Ok(true) => {}
            Ok(false) => {
                return Ok(self.refused(self.out_of_speech()).await);
            }
            Err(e) => return Ok(self.refused(ApiError::from(e)).await),
        }
        let heard = match listening {
            Some((listening, engine)) => {
                let heard = listening.finish().await;
                drop(engine);
                heard
            }
            None => {
                let summaries =
                    match trac::student_concepts(&self.state.db, &self.caller.user, &[]).await {
                        // This concept's words first: the grammar keeps a bounded number of
                        // topics.
                        Ok(cs) => std::iter::once(self.concept.summary.clone())
                            .chain(
                                cs.into_iter()
                                    .filter(|c| c.id != self.concept.id)
                                    .map(|c| c.summary),
                            )
                            .collect::<Vec<_>>(),
                        Err(e) => return Ok(self.refused(ApiError::from(e)).await),
                    };
                let Some(engine) = self.state.limits.engine(&self.caller.user).await else {
                    return Ok(self.error("busy", BUSY).await);
                };
                let heard = self.voice.recognizer.transcribe(pcm, &summaries).await;
                drop(engine);
                heard
            }
        };
        let heard = match heard {
            Ok(t) => t,
            Err(SpeechError::RateLimited { retry_after, .. }) => {
                tracing::warn!(retry_after, "speech recognition rate limited");
                return Ok(self
                    .error(
                        "busy",
                        &format!(
                            "the voice tutor is busy right now; ask again in {retry_after} seconds"
                        ),
                    )
                    .await);
            }
            Err(e) => {
                tracing::warn!(error = %e, "speech recognition failed");
                return Ok(self
                    .error(
                        "recognition_failed",
                        "your question could not be heard just now; try again",
                    )
                    .await);
            }
        };
        if heard.is_empty() {
            return Ok(self
                .error(
                    "not_understood",
                    "nothing was recognised; ask about one of your concepts",
                )
                .await);
        }
        if !self
            .send(json!({"type": "transcript", "text": heard}))
            .await
        {
            return Ok(false);
        }
        let (turn, question_id) = match prepare(
            &self.state,
            &self.tutor,
            &self.caller.user,
            &self.concept,
            self.conversation_id,
            &heard,
            Some(reservation),
        )
        .await
        {
            Ok(t) => t,
            Err(e) => return Ok(self.refused(e).await),
        };
        self.conversation_id = Some(turn.conversation_id);
        let conversation = json!({"type": "conversation", "conversation_id": turn.conversation_id, "question_id": question_id});
        if !self.send(conversation).await {
            return Ok(false);
        }
        let (tx, mut rx) = mpsc::channel(64);
        // The answer is saved even if the socket drops mid-way (tutor::answer runs to its end).
        tokio::spawn(tutor::answer(
            self.state.db.clone(),
            self.tutor.clone(),
            turn,
            tx,
        ));
        // Speak while the tutor is still writing: each sentence goes to the synthesizer as
        // soon as it is complete, and its audio to the page as soon as it is ready, in order.
        // Unbounded, so the loop below never waits on it while the speaker waits on the loop;
        // the budget bounds it (MAX_SPOKEN characters).
        let (say, sentences) = mpsc::unbounded_channel::<String>();
        let (spoken_tx, mut spoken) = mpsc::channel::<Result<Vec<u8>, SpeechError>>(4);
        let speaker = tokio::spawn(speak_in_order(
            self.voice.clone(),
            self.state.limits.clone(),
            self.caller.user.clone(),
            sentences,
            spoken_tx,
        ));
        // Aborted with the socket, a new question, or a failure: nothing more is spoken.
        let _speaker = AbortOnDrop(speaker);
        let mut say = Some(say);
        let mut pending = String::new();
        let mut budget = MAX_SPOKEN;
        let mut finished = false;
        // The model's answer has ended (all deltas forwarded).
        let mut answered = false;
        // Speech failed: why, told the page once the answer is whole.
        let mut silenced: Option<(&str, &str)> = None;
        let mut parts = 0usize;
        loop {
            tokio::select! {
                event = rx.recv(), if !answered => match event {
                    Some((name, mut data)) => {
                        if name == "delta" {
                            pending.push_str(data["text"].as_str().unwrap_or(""));
                            while let Some(sentence) = take_sentence(&mut pending) {
                                queue(&say, &mut budget, sentence);
                            }
                        }
                        finished |= name == "done";
                        data["type"] = json!(name);
                        if !self.send(data).await {
                            return Ok(false);
                        }
                    }
                    None => {
                        if !finished {
                            return Ok(true); // the error event told the page
                        }
                        answered = true;
                        let rest = std::mem::take(&mut pending);
                        queue(&say, &mut budget, rest);
                        say = None; // the speaker ends after the last sentence
                        if silenced.is_some() {
                            break;
                        }
                    }
                },
                audio = spoken.recv(), if silenced.is_none() => match audio {
                    Some(Ok(wav)) => {
                        let header = json!({"type": "audio", "format": "audio/wav", "bytes": wav.len(), "part": parts});
                        if !(self.send(header).await && self.deliver(Message::Binary(wav.into())).await) {
                            return Ok(false);
                        }
                        parts += 1;
                    }
                    Some(Err(e)) => {
                        // The rest is not spoken, but still written: the deltas keep
                        // coming, and the error ends the turn once the answer is whole.
                        silenced = Some(match e {
                            SpeechError::RateLimited { .. } => ("busy", "the voice tutor is busy; the rest of the answer is shown in writing"),
                            e => {
                                tracing::warn!(error = %e, "speech synthesis failed");
                                ("synthesis_failed", "the answer could not be spoken; it is shown in writing")
                            }
                        });
                        say = None;
                        if answered {
                            break;
                        }
                    }
                    None => break,
                },
            }
        }
        if let Some((code, message)) = silenced {
            return Ok(self.error(code, message).await);
        }
        Ok(self.send(json!({"type": "spoken", "parts": parts})).await)
    }

    /// Tells the page why a question was not taken (limits, a conversation not found);
    /// a limit says in `retry_after` how many seconds until it lifts, as a 429 would.
    async fn refused(&mut self, e: ApiError) -> bool {
        let code = match &e {
            ApiError::TooManyRequests { .. } => "too_many_requests",
            ApiError::NotFound(_) => "not_found",
            _ => "unavailable",
        };
        let mut event = json!({"type": "error", "code": code, "message": e.to_string()});
        if let ApiError::TooManyRequests { retry_after, .. } = e {
            event["retry_after"] = json!(retry_after);
        }
        self.send(event).await
    }
}

/// How long one frame may wait for the page to read it.
const SEND_WAIT: Duration = Duration::from_secs(15);
const BUSY: &str = "the voice tutor is busy with other students; ask again in a moment";
/// RFC 6455 close codes: 1001 going away (idle, lifetime), 1008 policy (sign-in, owner).
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_POLICY: u16 = 1008;
/// RFC 6455 1013: try again later (the database could not confirm the sign-in).
const CLOSE_TRY_AGAIN: u16 = 1013;

/// The most text spoken for one answer (its start; the page shows all of it).
const MAX_SPOKEN: usize = 1500;

/// Queues a sentence for speaking within the answer's budget; blank text is skipped.
fn queue(say: &Option<mpsc::UnboundedSender<String>>, budget: &mut usize, sentence: String) {
    let sentence: String = sentence.trim().chars().take(*budget).collect();
    if sentence.is_empty() {
        return;
    }
    *budget -= sentence.chars().count();
    if let Some(s) = say {
        let _ = s.send(sentence);
    }
}

/// The first complete sentence of `pending`, taken out of it: up to `.`, `?`, `!` or a
/// line break followed by whitespace, once at least a few words long (so "e.g. " or "2. "
/// do not become sentences of their own); or, with no end in sight, about 300 characters
/// cut at a space.
fn take_sentence(pending: &mut String) -> Option<String> {
    const MIN: usize = 16;
    const MAX: usize = 300;
    // What follows a cut starts with its space: gone, so every cut below is past 0.
    let lead = pending.len() - pending.trim_start().len();
    pending.replace_range(..lead, "");
    let bytes = pending.as_bytes();
    let mut cut = None;
    for (i, c) in pending.char_indices() {
        let ends = matches!(c, '.' | '?' | '!' | '\n');
        let next_is_space = bytes.get(i + 1).is_some_and(|b| b.is_ascii_whitespace());
        if ends && next_is_space && i + 1 >= MIN {
            cut = Some(i + 1);
            break;
        }
    }
    if cut.is_none() && pending.len() > MAX {
        // On a character boundary first (byte 300 may fall inside one), then at a space.
        let end = (1..=MAX).rev().find(|&i| pending.is_char_boundary(i))?;
        cut = Some(pending[..end].rfind(' ').filter(|&i| i > 0).unwrap_or(end));
    }
    let at = cut?;
    let sentence = pending[..at].trim().to_string();
    pending.replace_range(..at, "");
    Some(sentence)
}

/// Speaks each sentence in turn, an engine held per sentence (other students' turns come
/// between); stops at the first failure, or when the socket no longer wants the audio.
async fn speak_in_order(
    voice: Arc<Voice>,
    limits: Arc<crate::limits::Limits>,
    student: String,
    mut sentences: mpsc::UnboundedReceiver<String>,
    spoken: mpsc::Sender<Result<Vec<u8>, SpeechError>>,
) {
    while let Some(sentence) = sentences.recv().await {
        let Some(engine) = limits.engine(&student).await else {
            let _ = spoken
                .send(Err(SpeechError::RateLimited {
                    engine: "pool",
                    retry_after: 5,
                }))
                .await;
            return;
        };
        let wav = voice.synthesizer.speak(&sentence).await;
        drop(engine);
        let failed = wav.is_err();
        if spoken.send(wav).await.is_err() || failed {
            return;
        }
    }
}

/// The next "heard so far" of the utterance being heard; never, when none is (or its
/// engine has finished talking).
async fn heard_so_far(listening: &mut Option<(Listening, EngineSlot)>) -> String {
    match listening {
        Some((l, _)) => match l.heard_so_far.recv().await {
            Some(text) => text,
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::take_sentence;

    #[test]
    fn sentences_are_cut_where_they_end_and_not_at_every_dot() {
        let mut p = "Let's work on Linear equations. First, what do you".to_string();
        assert_eq!(
            take_sentence(&mut p).as_deref(),
            Some("Let's work on Linear equations.")
        );
        assert_eq!(p, " First, what do you");
        assert_eq!(take_sentence(&mut p), None, "no end yet");
        p.push_str(" already know? ");
        assert_eq!(
            take_sentence(&mut p).as_deref(),
            Some("First, what do you already know?")
        );
        // Abbreviations and list numbers early in a sentence do not cut it.
        let mut p = "E.g. 2. Take x = 3.5 to both sides. Then".to_string();
        assert_eq!(
            take_sentence(&mut p).as_deref(),
            Some("E.g. 2. Take x = 3.5 to both sides.")
        );
        // A run-on answer is cut near 300 characters, at a space.
        let mut p = "word ".repeat(100);
        let s = take_sentence(&mut p).unwrap_or_default();
        assert!(s.len() <= 300 && s.ends_with("word"), "{s}");
        // Multi-byte text is cut on a character boundary, wherever byte 300 falls.
        for lead in ["", "a", "ab"] {
            let mut p = format!("{lead}{}", "线".repeat(200));
            let s = take_sentence(&mut p).unwrap_or_default();
            assert!(!s.is_empty() && s.len() <= 300, "{lead}: {}", s.len());
        }
        // A long run without a space after a cut (a URL, a formula) still moves on: every
        // call takes something, so the caller's loop ends.
        let mut p = format!("Here it is. {}", "x".repeat(700));
        let mut taken = 0;
        while let Some(s) = take_sentence(&mut p) {
            assert!(!s.is_empty());
            taken += 1;
            assert!(taken < 10, "no progress");
        }
        assert_eq!(taken, 3, "the sentence, then two 300-character cuts");
    }
}
