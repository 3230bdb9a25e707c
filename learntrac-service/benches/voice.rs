//! Benchmark (not a test; run by scripts/bench/voice): what a student waits for after they
//! stop speaking — end of speech → transcript, and → the first byte of the spoken answer —
//! through the voice socket of the service built in release, with each engine:
//!
//! - `local`: the real PocketSphinx and espeak-ng. Their own time is measured beside it by
//!   calling the same engines directly on the same audio and the same first sentence.
//! - `openai` and `aws`: the protocol doubles (tests/common), each answering after a fixed
//!   latency (`ENGINE_MS`, 300 ms: transcription, and each sentence's speech).
//!
//! The model is the chat double, which answers at once. What the service adds is the
//! median wait minus what the engines took: for the transcript, recognition; for the first
//! audio, recognition and the first sentence's synthesis. Goal: ≤ 150 ms.
//!   N=20 ENGINE_MS=300 cargo bench -p learntrac-service --bench voice

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::fake_audio::FakeAudio;
use common::fake_aws_speech::FakeAwsSpeech;
use common::fake_model::FakeModel;
use common::speech::{self, Socket};
use common::{App, AppOptions, TracEnv, standard_seed};
use futures_util::{SinkExt, StreamExt};
use learntrac_service::voice::{Recognizer, Synthesizer, wav};
use tokio_tungstenite::tungstenite::Message;

/// One utterance's waits, from `end` sent.
struct Waits {
    transcript: Duration,
    first_audio: Duration,
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Streams `pcm`, sends `end` and times the transcript and the first audio frame; reads on
/// to `spoken` so the next utterance starts clean.
async fn utterance(socket: &mut Socket, pcm: &[u8]) -> Waits {
    for frame in pcm.chunks(6400) {
        socket
            .send(Message::Binary(frame.to_vec().into()))
            .await
            .expect("send audio");
    }
    socket
        .send(Message::Text(r#"{"type":"end"}"#.into()))
        .await
        .expect("send end");
    let end = Instant::now();
    let mut transcript = None;
    let mut first_audio = None;
    while let Some(Ok(msg)) = socket.next().await {
        match msg {
            Message::Text(t) => {
                let v: serde_json::Value = serde_json::from_str(&t).expect("JSON");
                match v["type"].as_str() {
                    Some("transcript") => transcript = Some(end.elapsed()),
                    Some("spoken") => break,
                    Some("error") => panic!("the service answered an error: {v}"),
                    _ => {}
                }
            }
            Message::Binary(_) if first_audio.is_none() => first_audio = Some(end.elapsed()),
            _ => {}
        }
    }
    Waits {
        transcript: transcript.expect("a transcript"),
        first_audio: first_audio.expect("audio"),
    }
}

/// The service with `vars`, a student's socket, and `n` utterances of `pcm`; also the
/// student's concepts (the recogniser's topics).
async fn run(vars: Vec<(&'static str, String)>, pcm: &[u8], n: usize) -> (Vec<Waits>, Vec<String>) {
    let env = TracEnv::postgres().await;
    standard_seed(&env);
    let model = FakeModel::start().await;
    let mut extra = vec![
        ("CHAT_BASE_URL", model.base_url.clone()),
        ("CHAT_MODEL", "tutor-model".to_string()),
    ];
    extra.extend(vars);
    let app = App::spawn_with(
        &env.database_url,
        AppOptions {
            extra,
            ..AppOptions::default()
        },
    )
    .await;
    let token =
        learntrac_service::auth::issue_token(common::TOKEN_SECRET, "alice", 3600).expect("token");
    let ws = app
        .url("/api/voice/ws?concept=2")
        .replace("http://", "ws://");
    let mut socket = speech::connect(&ws, Some(&token)).await.expect("connect");
    let _ready = socket.next().await;
    // One to warm up (connections, the first grammar), not counted.
    let _ = utterance(&mut socket, pcm).await;
    let mut waits = Vec::new();
    for _ in 0..n {
        waits.push(utterance(&mut socket, pcm).await);
    }
    let topics = learntrac_service::trac::student_concepts(&app.state.db, "alice", &[])
        .await
        .expect("concepts")
        .into_iter()
        .map(|c| c.summary)
        .collect();
    drop(app);
    drop(env);
    (waits, topics)
}

fn report(name: &str, waits: &[Waits], stt: Duration, tts: Duration) {
    let transcript = median(waits.iter().map(|w| w.transcript).collect());
    let first = median(waits.iter().map(|w| w.first_audio).collect());
    let added_transcript = ms(transcript) - ms(stt);
    let added_first = ms(first) - ms(stt) - ms(tts);
    println!(
        "{name:<44} transcript {:>6.0} ms (engine {:>5.0}, service +{:>4.0})   first audio {:>6.0} ms (engines {:>5.0}, service +{:>4.0})   goal +150 ms: {}",
        ms(transcript),
        ms(stt),
        added_transcript,
        ms(first),
        ms(stt) + ms(tts),
        added_first,
        if added_first <= 150.0 && added_transcript <= 150.0 {
            "met"
        } else {
            "NOT met"
        }
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let engine = Duration::from_millis(
        std::env::var("ENGINE_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(300),
    );
    let dir = tempfile::tempdir().expect("dir");
    let say = |text: &str, name: &str| {
        let file = dir.path().join(name);
        speech::say(text, &file, 0.3);
        speech::pcm_of(&file)
    };
    let asked = say("how do i solve an equation", "asked.wav");
    let free = say(
        "I don't get why you flip the sign when you divide by a negative",
        "free.wav",
    );
    println!(
        "{n} utterances each (median), release build; model double answering at once; doubles' engines {} ms",
        engine.as_millis()
    );

    // The real local engines, and their own time on the same work.
    let (waits, topics) = run(vec![("VOICE_ENGINE", "local".into())], &asked, n).await;
    let recognizer = learntrac_service::voice::local::Pocketsphinx::locate(
        learntrac_service::voice::local::DEBIAN_DICTIONARY.as_ref(),
    )
    .expect("PocketSphinx");
    let synthesizer = learntrac_service::voice::local::EspeakNg::locate().expect("espeak-ng");
    let samples: Vec<i16> = wav::samples(&asked).collect();
    let (mut stt, mut tts) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let t = Instant::now();
        let heard = recognizer
            .transcribe(&samples, &topics)
            .await
            .expect("heard");
        stt.push(t.elapsed());
        assert!(!heard.is_empty());
        let t = Instant::now();
        synthesizer
            .speak("Let's work on Equations.")
            .await
            .expect("spoken");
        tts.push(t.elapsed());
    }
    report(
        "local (PocketSphinx, espeak-ng; real)",
        &waits,
        median(stt),
        median(tts),
    );

    let audio = FakeAudio::start("I don't get why you flip the sign").await;
    audio.answer_after(engine);
    let (waits, _) = run(
        vec![
            ("VOICE_ENGINE", "openai".into()),
            ("VOICE_BASE_URL", audio.base_url.clone()),
        ],
        &free,
        n,
    )
    .await;
    report("openai (double)", &waits, engine, engine);

    let aws = FakeAwsSpeech::start("I don't get why you flip the sign").await;
    aws.answer_after(engine);
    let (waits, _) = run(aws.settings(), &free, n).await;
    report(
        "aws (Transcribe Streaming, Polly doubles)",
        &waits,
        engine,
        engine,
    );
}
