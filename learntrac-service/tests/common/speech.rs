//! Real speech for the voice tests: espeak-ng says a question, sox makes it what a browser
//! streams (16 kHz mono 16-bit PCM), and a WebSocket client talks to `/api/voice/ws` as
//! the student page does.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// `text` spoken by espeak-ng into `wav` (its own rate), padded with `silence_s` of quiet.
pub fn say(text: &str, wav: &Path, silence_s: f32) {
    let raw = wav.with_extension("raw.wav");
    let ok = Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "150", "-w"])
        .arg(&raw)
        .arg(text)
        .status()
        .expect("espeak-ng (scripts/test installs it)")
        .success();
    assert!(ok, "espeak-ng failed");
    let ok = Command::new("sox")
        .arg(&raw)
        .args(["-r", "16000", "-c", "1", "-b", "16"])
        .arg(wav)
        .args(["pad", "0.3", &silence_s.to_string()])
        .status()
        .expect("sox (scripts/test installs it)")
        .success();
    assert!(ok, "sox failed");
}

/// The PCM samples of a 16 kHz mono WAV that sox wrote (a 44-byte header).
pub fn pcm_of(wav: &Path) -> Vec<u8> {
    let bytes = std::fs::read(wav).expect("read wav");
    let data = bytes
        .windows(4)
        .position(|w| w == b"data")
        .expect("a data chunk")
        + 8;
    bytes[data..].to_vec()
}

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects as the page does: the token offered as a subprotocol, never in the URL.
pub async fn connect(
    url: &str,
    token: Option<&str>,
) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let mut req = url.into_client_request()?;
    let protocols = match token {
        Some(t) => format!("learntrac, bearer.{t}"),
        None => "learntrac".into(),
    };
    req.headers_mut()
        .insert("sec-websocket-protocol", protocols.parse().expect("header"));
    let (socket, resp) = tokio_tungstenite::connect_async(req).await?;
    assert_eq!(
        resp.headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some("learntrac")
    );
    Ok(socket)
}

/// What came back for one question: every JSON event in order, and the spoken answer
/// (its first part in `audio`, every part in `parts`).
pub struct Reply {
    pub events: Vec<Value>,
    pub audio: Option<Vec<u8>>,
    pub parts: Vec<Vec<u8>>,
}

impl Reply {
    pub fn of(&self, kind: &str) -> Option<&Value> {
        self.events.iter().find(|e| e["type"] == kind)
    }

    pub fn text(&self) -> String {
        self.events
            .iter()
            .filter(|e| e["type"] == "delta")
            .filter_map(|e| e["text"].as_str())
            .collect()
    }
}

/// Streams `pcm` in 200 ms frames, ends the utterance and reads until the answer has been
/// spoken (`spoken`), an error, or the socket's end.
pub async fn ask(socket: &mut Socket, pcm: &[u8]) -> Reply {
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
    read_reply(socket).await
}

/// Reads until the answer has been spoken (`spoken`), an error, or the socket's end.
pub async fn read_reply(socket: &mut Socket) -> Reply {
    let mut events = Vec::new();
    let mut parts = Vec::new();
    let mut expect_audio = false;
    let reply = |events, parts: Vec<Vec<u8>>| Reply {
        events,
        audio: parts.first().cloned(),
        parts,
    };
    while let Some(msg) = socket.next().await {
        let Ok(msg) = msg else { break };
        match msg {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(&t).expect("JSON event");
                let kind = v["type"].as_str().unwrap_or("").to_string();
                events.push(v);
                match kind.as_str() {
                    "audio" => expect_audio = true,
                    "error" | "spoken" => return reply(events, parts),
                    _ => {}
                }
            }
            Message::Binary(b) if expect_audio => {
                expect_audio = false;
                parts.push(b.to_vec());
            }
            _ => {}
        }
    }
    reply(events, parts)
}
