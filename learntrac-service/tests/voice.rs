//! The voice tutor on its WebSocket with real speech engines (espeak-ng, PocketSphinx) on
//! real PostgreSQL and Trac; only the model is the protocol double.

mod common;

use common::fake_model::{FakeModel, answer_words};
use common::speech::{self, ask, connect};
use common::{App, AppOptions, TracEnv, Who, call, standard_seed};
use futures_util::StreamExt;

async fn setup() -> (TracEnv, App, FakeModel) {
    let env = TracEnv::postgres().await;
    standard_seed(&env);
    let model = FakeModel::start().await;
    let app = App::spawn_with(
        &env.database_url,
        AppOptions {
            extra: vec![
                ("CHAT_BASE_URL", model.base_url.clone()),
                ("CHAT_MODEL", "tutor-model".into()),
                ("VOICE_ENGINE", "local".into()),
            ],
            ..AppOptions::default()
        },
    )
    .await;
    (env, app, model)
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
