//! The voice tutor on its WebSocket with real speech engines (espeak-ng, PocketSphinx) on
//! real PostgreSQL and Trac; only the model is the protocol double.

mod common;

use common::fake_model::{FakeModel, answer_words};
use common::speech::{self, ask, connect};
use common::{App, AppOptions, TracEnv, Who, call, standard_seed};
use futures_util::StreamExt;

async fn setup() -> (TracEnv, App, FakeModel) {
    setup_with(&[]).await
}

async fn setup_with(extra: &[(&'static str, &str)]) -> (TracEnv, App, FakeModel) {
    let env = TracEnv::postgres().await;
    standard_seed(&env);
    let model = FakeModel::start().await;
    let mut vars = vec![
        ("CHAT_BASE_URL", model.base_url.clone()),
        ("CHAT_MODEL", "tutor-model".into()),
        ("VOICE_ENGINE", "local".into()),
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

/// Connects with a Trac login cookie and the given Origin, as a browser page would.
async fn connect_by_cookie(
    url: &str,
    cookie: &str,
    origin: &str,
) -> Result<speech::Socket, tokio_tungstenite::tungstenite::Error> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = url.into_client_request()?;
    let h = req.headers_mut();
    h.insert(
        "sec-websocket-protocol",
        "learntrac".parse().expect("header"),
    );
    h.insert(
        "cookie",
        format!("trac_auth={cookie}").parse().expect("header"),
    );
    h.insert("origin", origin.parse().expect("header"));
    tokio_tungstenite::connect_async(req).await.map(|(s, _)| s)
}

fn status_of(r: Result<speech::Socket, tokio_tungstenite::tungstenite::Error>) -> u16 {
    match r {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("{e}"),
        Ok(_) => 101,
    }
}

/// Reads until the service closes the socket: the last error event and the close code.
async fn closed(socket: &mut speech::Socket) -> (serde_json::Value, Option<u16>) {
    use tokio_tungstenite::tungstenite::Message;
    let mut last = serde_json::Value::Null;
    while let Ok(Some(msg)) =
        tokio::time::timeout(std::time::Duration::from_secs(30), socket.next()).await
    {
        match msg {
            Ok(Message::Text(t)) => {
                let v: serde_json::Value = serde_json::from_str(&t).unwrap_or_default();
                if v["type"] == "error" {
                    last = v;
                }
            }
            Ok(Message::Close(frame)) => return (last, frame.map(|f| u16::from(f.code))),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    (last, None)
}

/// Asks, expecting no hearing: the error's message (from the reply, or the last one before
/// the close) and the close code.
async fn refused_and_closed(socket: &mut speech::Socket, question: &[u8]) -> (String, Option<u16>) {
    let reply = ask(socket, question).await;
    assert!(reply.of("transcript").is_none(), "{:?}", reply.events);
    let (err, code) = closed(socket).await;
    let err = if err.is_null() {
        reply.of("error").cloned().unwrap_or_default()
    } else {
        err
    };
    (err["message"].as_str().unwrap_or("").to_string(), code)
}

fn spoken_question(dir: &std::path::Path) -> Vec<u8> {
    let wav = dir.join("q.wav");
    speech::say("how do i solve an equation", &wav, 0.5);
    speech::pcm_of(&wav)
}

fn token(user: &str) -> String {
    learntrac_service::auth::issue_token(common::TOKEN_SECRET, user, 600).expect("token")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spoken_question_is_transcribed_answered_and_spoken_back() {
    let (_env, app, model) = setup().await;
    let (_, health) = call(app.get("/api/LearnTrac/health", Who::Anonymous)).await;
    assert_eq!(health["features"]["voice"], "enabled", "{health}");
    let dir = tempfile::tempdir().expect("dir");
    let wav = dir.path().join("q.wav");
    speech::say("how do i solve an equation", &wav, 0.5);
    let ws = app
        .url("/api/voice/ws?concept=2")
        .replace("http://", "ws://");

    let mut socket = connect(&ws, Some(&token("alice"))).await.expect("connect");
    let ready = socket.next().await.expect("ready").expect("message");
    assert!(
        ready
            .to_text()
            .unwrap_or("")
            .contains("\"sample_rate\":16000"),
        "{ready:?}"
    );
    let reply = ask(&mut socket, &speech::pcm_of(&wav)).await;
    let transcript = reply
        .of("transcript")
        .unwrap_or_else(|| panic!("{:?}", reply.events));
    assert_eq!(
        transcript["text"], "how do i solve an equation",
        "{:?}",
        reply.events
    );
    assert_eq!(reply.text(), answer_words("Equations").concat());
    assert!(reply.of("done").is_some(), "{:?}", reply.events);
    let audio = reply.audio.clone().expect("the answer spoken");
    let header = reply.of("audio").expect("audio header");
    assert_eq!(header["bytes"], audio.len());
    assert_eq!(&audio[..4], b"RIFF");
    assert!(
        audio.len() > 44 + 22_050,
        "about a second or more of speech: {}",
        audio.len()
    );
    // The model was asked the transcript, grounded as in chat.
    let asked = &model.requests()[0]["messages"];
    assert_eq!(asked[1]["content"], "how do i solve an equation");
    assert_eq!(
        common::fake_model::course_material(asked[0]["content"].as_str().unwrap_or(""))["summary"],
        "Equations"
    );
    let conversation = reply.of("conversation").expect("conversation")["conversation_id"].clone();

    // The socket drops; a new one resumes the same conversation.
    drop(socket);
    let resumed = format!("{ws}&conversation_id={conversation}");
    let mut socket = connect(&resumed, Some(&token("alice")))
        .await
        .expect("reconnect");
    let _ready = socket.next().await;
    let reply = ask(&mut socket, &speech::pcm_of(&wav)).await;
    assert!(reply.of("done").is_some(), "{:?}", reply.events);
    let (_, c) = call(app.get(
        &format!("/api/chat/conversations/{conversation}"),
        Who::Bearer("alice"),
    ))
    .await;
    assert_eq!(c["messages"].as_array().map(Vec::len), Some(4), "{c}");

    // Silence is not a question.
    let reply = ask(&mut socket, &vec![0u8; 16_000]).await;
    let err = reply
        .of("error")
        .unwrap_or_else(|| panic!("{:?}", reply.events));
    assert_eq!(err["code"], "not_understood", "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_socket_needs_a_student_and_their_own_concept() {
    let (_env, app, _model) = setup().await;
    let ws = app
        .url("/api/voice/ws?concept=2")
        .replace("http://", "ws://");
    let refused = |r: Result<speech::Socket, tokio_tungstenite::tungstenite::Error>| match r {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("{e}"),
        Ok(_) => 101,
    };
    assert_eq!(refused(connect(&ws, None).await), 401);
    assert_eq!(refused(connect(&ws, Some("not-a-token")).await), 401);
    assert_eq!(
        refused(connect(&ws, Some(&token("bob"))).await),
        404,
        "alice's concept, to bob"
    );

    // Without engines, the route says what to set.
    let env = TracEnv::postgres().await;
    standard_seed(&env);
    let plain = App::spawn(&env.database_url).await;
    let (_, health) = call(plain.get("/api/LearnTrac/health", Who::Anonymous)).await;
    assert_eq!(health["features"]["voice"], "disabled");
    let ws = plain
        .url("/api/voice/ws?concept=2")
        .replace("http://", "ws://");
    assert_eq!(refused(connect(&ws, Some(&token("alice"))).await), 503);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_socket_ends_with_its_sign_in_or_its_owner_and_needs_the_sites_own_origin() {
    let (env, app, model) = setup().await;
    let dir = tempfile::tempdir().expect("dir");
    let question = spoken_question(dir.path());
    let ws = app
        .url("/api/voice/ws?concept=2")
        .replace("http://", "ws://");
    let own_origin = app.url("").trim_end_matches('/').to_string();

    // A cookie-signed upgrade from another site (or a same-site subdomain) is refused;
    // from the page's own origin it is taken.
    assert_eq!(
        status_of(connect_by_cookie(&ws, "alice-cookie", "https://evil.example").await),
        403
    );
    assert_eq!(
        status_of(connect_by_cookie(&ws, "alice-cookie", "http://learn.school.example").await),
        403
    );
    let mut by_cookie = connect_by_cookie(&ws, "alice-cookie", &own_origin)
        .await
        .expect("same-origin upgrade");

    // A token that expires while the socket is open: the next question closes it (1008).
    let short =
        learntrac_service::auth::issue_token(common::TOKEN_SECRET, "alice", 2).expect("token");
    let mut socket = connect(&ws, Some(&short)).await.expect("connect");
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let (message, code) = refused_and_closed(&mut socket, &question).await;
    assert!(message.contains("sign-in has ended"), "{message}");
    assert_eq!(code, Some(1008));

    // Logged out of Trac (its cookie row deleted): the cookie-signed socket closes too.
    let mut db = common::sqlx_pg(&env.database_url).await;
    sqlx::query("DELETE FROM auth_cookie WHERE cookie = 'alice-cookie'")
        .execute(&mut db)
        .await
        .expect("logout");
    assert_eq!(
        refused_and_closed(&mut by_cookie, &question).await.1,
        Some(1008)
    );

    // The concept reassigned to bob while alice's socket is open: closed at her next
    // question, past no cache.
    let mut socket = connect(&ws, Some(&token("alice"))).await.expect("connect");
    sqlx::query("UPDATE ticket SET owner = 'bob' WHERE id = 2")
        .execute(&mut db)
        .await
        .expect("reassign");
    let (message, code) = refused_and_closed(&mut socket, &question).await;
    assert!(message.contains("no longer yours"), "{message}");
    assert_eq!(code, Some(1008));
    assert!(model.requests().is_empty(), "nothing reached the model");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_student_cannot_hold_many_sockets_or_listen_for_free() {
    let (_env, app, model) =
        setup_with(&[("CHAT_DAILY_REQUESTS", "1"), ("VOICE_IDLE_SECONDS", "2")]).await;
    let ws = app
        .url("/api/voice/ws?concept=2")
        .replace("http://", "ws://");
    let mut first = connect(&ws, Some(&token("alice"))).await.expect("first");
    let _second = connect(&ws, Some(&token("alice"))).await.expect("second");
    assert_eq!(status_of(connect(&ws, Some(&token("alice"))).await), 429);
    // Others are not held by her sockets.
    let bob_ws = app
        .url("/api/voice/ws?concept=4")
        .replace("http://", "ws://");
    let _bob = connect(&bob_ws, Some(&token("bob"))).await.expect("bob");

    // Noise is counted before it is recognised: her one question of the day is spent on
    // it, and the real question after it is refused before recognition.
    let noise: Vec<u8> = (0..32_000u32)
        .flat_map(|i| ((i.wrapping_mul(2_654_435_761) >> 16) as i16).to_le_bytes())
        .collect();
    let reply = ask(&mut first, &noise).await;
    assert!(reply.of("error").is_some(), "{:?}", reply.events);
    let dir = tempfile::tempdir().expect("dir");
    let reply = ask(&mut first, &spoken_question(dir.path())).await;
    let err = reply.of("error").cloned().unwrap_or_default();
    assert_eq!(err["code"], "too_many_requests", "{:?}", reply.events);
    assert!(reply.of("transcript").is_none());
    assert!(model.requests().is_empty());

    // Quiet for VOICE_IDLE_SECONDS: closed (1001), and her slot is free again.
    let (err, code) = closed(&mut first).await;
    assert!(
        err["message"].as_str().unwrap_or("").contains("idle"),
        "{err}"
    );
    assert_eq!(code, Some(1001));
    let _again = connect(&ws, Some(&token("alice")))
        .await
        .expect("a slot came back");
}

#[tokio::test(flavor = "multi_thread")]
async fn free_form_speech_through_an_openai_compatible_endpoint() {
    use common::fake_audio::FakeAudio;
    // What PocketSphinx's grammar could never hear: the double hears it, as Whisper would.
    let sentence = "I don't get why you flip the sign when you divide by a negative";
    let audio = FakeAudio::start(sentence).await;
    let base = audio.base_url.clone();
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut v: Vec<(&'static str, String)> = vec![
            ("VOICE_ENGINE", "openai".into()),
            ("VOICE_BASE_URL", base.clone()),
            ("VOICE_API_KEY", "sk-voice-key".into()),
            ("VOICE_STALL_SECONDS", "1".into()),
        ];
        v.extend(extra.iter().map(|(k, x)| (*k, x.to_string())));
        v
    };
    let dir = tempfile::tempdir().expect("dir");
    let spoken = {
        let wav = dir.path().join("free.wav");
        speech::say(sentence, &wav, 0.3);
        speech::pcm_of(&wav)
    };
    let start = |vars: Vec<(&'static str, String)>| async move {
        let vars: Vec<(&'static str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (env, app, model) = setup_with(&vars).await;
        let ws = app
            .url("/api/voice/ws?concept=2")
            .replace("http://", "ws://");
        let socket = connect(&ws, Some(&token("alice"))).await.expect("connect");
        (env, app, model, socket)
    };

    let (_env, _app, model, mut socket) = start(with(&[])).await;
    let _ready = socket.next().await;
    let reply = ask(&mut socket, &spoken).await;
    assert_eq!(
        reply.of("transcript").map(|t| t["text"].clone()),
        Some(serde_json::json!(sentence)),
        "{:?}",
        reply.events
    );
    assert_eq!(reply.text(), answer_words("Equations").concat());
    let wav = reply.audio.clone().expect("the answer spoken");
    assert_eq!(&wav[..4], b"RIFF");
    assert_eq!(model.requests()[0]["messages"][1]["content"], sentence);
    // What the endpoint was sent, read as a server reads it.
    let parts = audio.heard.transcriptions.lock().expect("lock")[0].clone();
    let part = |n: &str| parts.iter().find(|p| p.name == n).cloned().expect(n);
    let file = part("file");
    assert_eq!(file.filename.as_deref(), Some("question.wav"));
    assert_eq!(file.content_type.as_deref(), Some("audio/wav"));
    assert_eq!(&file.data[..4], b"RIFF");
    assert_eq!(
        file.data.len(),
        44 + spoken.len(),
        "the whole utterance, as WAV"
    );
    assert_eq!(part("model").data, b"whisper-1");
    assert_eq!(part("response_format").data, b"json");
    assert!(
        String::from_utf8_lossy(&part("prompt").data).starts_with("Equations"),
        "the concept's names bias the spelling"
    );
    // Spoken a sentence at a time, in order.
    let said = audio.heard.speech.lock().expect("lock").clone();
    let inputs: Vec<&str> = said.iter().filter_map(|r| r["input"].as_str()).collect();
    assert_eq!(
        inputs,
        [
            "Let's work on Equations.",
            "First, what do you already know?"
        ]
    );
    assert_eq!(reply.parts.len(), 2);
    assert_eq!(said[0]["model"], "tts-1");
    assert_eq!(said[0]["voice"], "alloy");
    assert_eq!(said[0]["response_format"], "wav");
    assert!(
        audio
            .heard
            .auth
            .lock()
            .expect("lock")
            .iter()
            .all(|a| a == "Bearer sk-voice-key")
    );

    // Faults, each told to the student in their words (never the endpoint's).
    for (extra, code, says) in [
        (("VOICE_STT_MODEL", "whisper-429"), "busy", "7 seconds"),
        (
            ("VOICE_STT_MODEL", "whisper-500"),
            "recognition_failed",
            "try again",
        ),
        (
            ("VOICE_STT_MODEL", "whisper-stall"),
            "recognition_failed",
            "try again",
        ),
        (
            ("VOICE_TTS_MODEL", "tts-500"),
            "synthesis_failed",
            "shown in writing",
        ),
    ] {
        let (_env, _app, _model, mut socket) = start(with(&[extra])).await;
        let _ready = socket.next().await;
        let started = std::time::Instant::now();
        let reply = ask(&mut socket, &spoken).await;
        let err = reply
            .of("error")
            .cloned()
            .unwrap_or_else(|| panic!("{extra:?}: {:?}", reply.events));
        assert_eq!(err["code"], code, "{extra:?}: {err}");
        let message = err["message"].as_str().unwrap_or("");
        assert!(message.contains(says), "{extra:?}: {message}");
        assert!(
            !message.contains("Sorry about that") && !message.contains("Rate limit reached"),
            "{message}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{extra:?}: a stall is bounded"
        );
        if code == "synthesis_failed" {
            // Not spoken, but written whole: the error ends the turn after `done`.
            assert_eq!(reply.text(), answer_words("Equations").concat());
            assert!(reply.of("done").is_some(), "{:?}", reply.events);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_sentence_is_heard_while_the_tutor_is_still_writing_the_second() {
    let (_env, app, model) = setup().await;
    // The model pauses 1.5 s after each sentence: "Let's work on Equations." — pause —
    // "First, what do you already know?"
    model.pause_between_sentences(std::time::Duration::from_millis(1500));
    let dir = tempfile::tempdir().expect("dir");
    let ws = app
        .url("/api/voice/ws?concept=2")
        .replace("http://", "ws://");
    let mut socket = connect(&ws, Some(&token("alice"))).await.expect("connect");
    let _ready = socket.next().await;
    let reply = ask(&mut socket, &spoken_question(dir.path())).await;
    let kinds: Vec<String> = reply
        .events
        .iter()
        .map(|e| match e["type"].as_str() {
            Some("delta") => format!("delta:{}", e["text"].as_str().unwrap_or("").trim()),
            Some(k) => k.to_string(),
            None => "?".into(),
        })
        .collect();
    let at = |k: &str| kinds.iter().position(|x| x == k);
    let first_audio = at("audio").unwrap_or_else(|| panic!("{kinds:?}"));
    let last_word = at("delta:know?").unwrap_or_else(|| panic!("{kinds:?}"));
    assert!(
        first_audio < last_word,
        "the first sentence's audio came before the second sentence was written: {kinds:?}"
    );
    // Both sentences spoken, in order, and the end said.
    assert_eq!(reply.parts.len(), 2, "{kinds:?}");
    assert!(reply.parts.iter().all(|p| p.starts_with(b"RIFF")));
    assert_eq!(
        reply.of("spoken").map(|s| s["parts"].clone()),
        Some(serde_json::json!(2))
    );
    assert!(kinds.iter().position(|k| k == "done") < at("spoken"));
}

#[tokio::test(flavor = "multi_thread")]
async fn speech_is_counted_against_a_daily_allowance() {
    let (env, app, model) = setup_with(&[("VOICE_DAILY_SECONDS", "2")]).await;
    let dir = tempfile::tempdir().expect("dir");
    let question = spoken_question(dir.path());
    let ws = app
        .url("/api/voice/ws?concept=2")
        .replace("http://", "ws://");
    let mut socket = connect(&ws, Some(&token("alice"))).await.expect("connect");
    let _ready = socket.next().await;
    // The first question fits (the day had none); it is counted, rounded up to seconds.
    let reply = ask(&mut socket, &question).await;
    assert!(reply.of("spoken").is_some(), "{:?}", reply.events);
    let mut db = common::sqlx_pg(&env.database_url).await;
    let (seconds,): (i64,) =
        sqlx::query_as("SELECT audio_seconds FROM learntrac_chat_usage WHERE student = 'alice'")
            .fetch_one(&mut db)
            .await
            .expect("usage");
    let expected = i64::try_from((question.len() / 2).div_ceil(16_000)).unwrap_or(0);
    assert_eq!(seconds, expected);
    // The next is refused before it is heard, and says she can still type.
    let reply = ask(&mut socket, &question).await;
    let err = reply.of("error").cloned().unwrap_or_default();
    assert_eq!(err["code"], "too_many_requests", "{:?}", reply.events);
    let message = err["message"].as_str().unwrap_or("");
    assert!(
        message.contains("2 seconds of speech") && message.contains("still type"),
        "{message}"
    );
    assert!(reply.of("transcript").is_none());
    assert_eq!(model.requests().len(), 1);
}

/// Streams `pcm` in 200 ms frames a little faster than real time, collecting what the
/// service says meanwhile (before `end` is sent).
async fn speak_slowly(socket: &mut speech::Socket, pcm: &[u8]) -> Vec<serde_json::Value> {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let mut said = Vec::new();
    for frame in pcm.chunks(6400) {
        socket
            .send(Message::Binary(frame.to_vec().into()))
            .await
            .expect("send audio");
        let until = tokio::time::Instant::now() + std::time::Duration::from_millis(60);
        while let Ok(Some(Ok(Message::Text(t)))) =
            tokio::time::timeout_at(until, socket.next()).await
        {
            said.push(serde_json::from_str(&t).expect("JSON event"));
        }
    }
    said
}

async fn end_utterance(socket: &mut speech::Socket) -> speech::Reply {
    use futures_util::SinkExt;
    socket
        .send(tokio_tungstenite::tungstenite::Message::Text(
            r#"{"type":"end"}"#.into(),
        ))
        .await
        .expect("send end");
    speech::read_reply(socket).await
}

#[tokio::test(flavor = "multi_thread")]
async fn free_form_speech_through_amazon_transcribe_streaming_and_polly() {
    use common::fake_aws_speech::{FakeAwsSpeech, Fault};
    let sentence = "I don't get why you flip the sign when you divide by a negative";
    let aws = FakeAwsSpeech::start(sentence).await;
    let dir = tempfile::tempdir().expect("dir");
    let spoken = {
        let wav = dir.path().join("free.wav");
        speech::say(sentence, &wav, 0.3);
        speech::pcm_of(&wav)
    };
    let mut vars = aws.settings();
    vars.push(("VOICE_STALL_SECONDS", "2".into()));
    vars.push(("VOICE_DAILY_SECONDS", "60".into()));
    let vars: Vec<(&'static str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (env, app, model) = setup_with(&vars).await;
    let ws = app
        .url("/api/voice/ws?concept=2")
        .replace("http://", "ws://");
    let mut socket = connect(&ws, Some(&token("alice"))).await.expect("connect");
    let _ready = socket.next().await;

    // Heard while she is still speaking: growing partial transcripts, before `end`.
    let meanwhile = speak_slowly(&mut socket, &spoken).await;
    let hearing: Vec<&str> = meanwhile
        .iter()
        .filter(|e| e["type"] == "hearing")
        .filter_map(|e| e["text"].as_str())
        .collect();
    assert!(hearing.len() >= 3, "{meanwhile:?}");
    assert!(
        hearing.windows(2).all(|w| w[1].len() > w[0].len()),
        "{hearing:?}"
    );
    assert!(
        hearing.iter().all(|h| sentence.starts_with(h)),
        "{hearing:?}"
    );
    let reply = end_utterance(&mut socket).await;
    assert_eq!(
        reply.of("transcript").map(|t| t["text"].clone()),
        Some(serde_json::json!(sentence)),
        "{:?}",
        reply.events
    );
    assert_eq!(model.requests()[0]["messages"][1]["content"], sentence);
    assert_eq!(reply.text(), answer_words("Equations").concat());

    // What Transcribe was sent, as its server reads it: one HTTP/2 stream (h2 is all the
    // double speaks), signed for the transcribe service, every audio frame signed, the
    // whole utterance in audio events of at most 200 ms, and the end-of-stream frame.
    let streams = aws.seen.streams.lock().expect("lock").clone();
    assert_eq!(streams.len(), 1);
    let s = &streams[0];
    assert_eq!(s.header("x-amzn-transcribe-language-code"), Some("en-US"));
    assert_eq!(s.header("x-amzn-transcribe-sample-rate"), Some("16000"));
    assert!(
        s.header("authorization")
            .is_some_and(|a| a.contains("Credential=AKIAFAKEFAKEFAKEFAKE/")
                && a.contains("/eu-west-1/transcribe/aws4_request")),
        "{:?}",
        s.header("authorization")
    );
    assert!(s.signed && s.ended, "{s:?}");
    assert_eq!(s.audio_bytes, spoken.len() - spoken.len() % 2);
    assert!(s.audio_events >= spoken.len() / 6400, "{s:?}");

    // Spoken by Polly a sentence at a time, as 16 kHz PCM wrapped in WAV for the page.
    let said = aws.seen.speech.lock().expect("lock").clone();
    let texts: Vec<&str> = said
        .iter()
        .filter_map(|(r, _)| r["Text"].as_str())
        .collect();
    assert_eq!(
        texts,
        [
            "Let's work on Equations.",
            "First, what do you already know?"
        ]
    );
    for (r, auth) in &said {
        assert_eq!(r["OutputFormat"], "pcm");
        assert_eq!(r["SampleRate"], "16000");
        assert_eq!(r["VoiceId"], "Joanna");
        assert_eq!(r["Engine"], "neural");
        assert!(auth.contains("/eu-west-1/polly/aws4_request"), "{auth}");
    }
    assert_eq!(reply.parts.len(), 2);
    for part in &reply.parts {
        assert_eq!(&part[..4], b"RIFF");
        assert_eq!(
            u32::from_le_bytes([part[24], part[25], part[26], part[27]]),
            16_000
        );
        assert!(part.len() > 44 + 16_000, "a second or more of speech");
    }

    // Faults, told to the student in their words: expired credentials, throttling at the
    // start and in the middle of the stream, Polly's expired credentials and throttling.
    for (transcribe, polly, code, says) in [
        (
            Fault::Expired,
            Fault::None,
            "recognition_failed",
            "try again",
        ),
        (Fault::Throttled, Fault::None, "busy", "seconds"),
        (Fault::ThrottledMidStream, Fault::None, "busy", "seconds"),
        (
            Fault::None,
            Fault::Expired,
            "synthesis_failed",
            "shown in writing",
        ),
        (Fault::None, Fault::Throttled, "busy", "shown in writing"),
    ] {
        aws.transcribe_fails_with(transcribe);
        aws.polly_fails_with(polly);
        let calls = |aws: &FakeAwsSpeech| {
            (
                aws.seen.streams.lock().expect("lock").len(),
                aws.seen.speech.lock().expect("lock").len(),
            )
        };
        let before = calls(&aws);
        let started = std::time::Instant::now();
        let reply = ask(&mut socket, &spoken[..spoken.len().min(64_000)]).await;
        let err = reply
            .of("error")
            .cloned()
            .unwrap_or_else(|| panic!("{transcribe:?}/{polly:?}: {:?}", reply.events));
        assert_eq!(err["code"], code, "{transcribe:?}/{polly:?}: {err}");
        let message = err["message"].as_str().unwrap_or("");
        assert!(message.contains(says), "{message}");
        assert!(
            !message.contains("Exception") && !message.contains("token"),
            "AWS's words stay in the log: {message}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        // Not retried: the student is told to ask again instead of waiting on backoff.
        let after = calls(&aws);
        assert_eq!(after.0 - before.0, 1, "one stream");
        if polly != Fault::None {
            assert_eq!(after.1 - before.1, 1, "one speech request");
        }
        // The socket stays usable after each (an error ends a turn, not the session)…
        // except that the page closes it; reconnect as the page does.
        socket = connect(&ws, Some(&token("alice")))
            .await
            .expect("reconnect");
        let _ready = socket.next().await;
    }
    aws.transcribe_fails_with(Fault::None);
    aws.polly_fails_with(Fault::None);

    // Today's speech used up: refused at the first frame, and no audio leaves for AWS.
    let before = aws.seen.streams.lock().expect("lock").len();
    let used = seconds_counted(&env.database_url, "alice").await;
    assert!(used > 0, "each utterance counted its seconds");
    let small = App::spawn_with(
        &env.database_url,
        AppOptions {
            extra: {
                let mut v: Vec<(&'static str, String)> =
                    vars.iter().map(|(k, v)| (*k, v.to_string())).collect();
                v.push(("CHAT_BASE_URL", model.base_url.clone()));
                v.push(("CHAT_MODEL", "tutor-model".into()));
                v.retain(|(k, _)| *k != "VOICE_DAILY_SECONDS");
                v.push(("VOICE_DAILY_SECONDS", used.to_string()));
                v
            },
            ..AppOptions::default()
        },
    )
    .await;
    let ws_small = small
        .url("/api/voice/ws?concept=2")
        .replace("http://", "ws://");
    let mut socket = connect(&ws_small, Some(&token("alice")))
        .await
        .expect("connect");
    let _ready = socket.next().await;
    let reply = ask(&mut socket, &spoken).await;
    let err = reply.of("error").cloned().expect("refused");
    assert_eq!(err["code"], "too_many_requests", "{err}");
    let wait = err["retry_after"].as_u64().unwrap_or(0);
    assert!((1..=86_400).contains(&wait), "until midnight UTC: {err}");
    assert_eq!(
        aws.seen.streams.lock().expect("lock").len(),
        before,
        "no stream was opened"
    );
}

/// Seconds of speech counted for `student` today.
async fn seconds_counted(database_url: &str, student: &str) -> i64 {
    let mut c = common::sqlx_pg(database_url).await;
    let (s,): (i64,) = sqlx::query_as(
        "SELECT COALESCE(SUM(audio_seconds), 0)::BIGINT FROM learntrac_chat_usage WHERE student = $1",
    )
    .bind(student)
    .fetch_one(&mut c)
    .await
    .expect("usage");
    s
}
