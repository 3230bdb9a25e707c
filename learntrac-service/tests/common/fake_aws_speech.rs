//! Test doubles of Amazon Transcribe Streaming and Amazon Polly (neither can be reached
//! from here), speaking their wire protocols to the official SDK clients:
//!
//! - **Transcribe Streaming**: HTTP/2 over TLS (ALPN h2; its certificate from a test CA the
//!   service is given as AWS_CA_BUNDLE), `POST /stream-transcription` with the
//!   `x-amzn-transcribe-*` headers and a SigV4 `Authorization` for the `transcribe`
//!   service. The request body is an event stream: each frame a signed envelope
//!   (`:date`, `:chunk-signature`) around an `AudioEvent` message, an empty envelope last.
//!   The response streams `TranscriptEvent` messages while audio arrives: a partial result
//!   for every 0.4 s of audio (the transcript's words so far, one more each time), and the
//!   final result once the audio has ended. Frames are decoded and encoded with the SDK's
//!   own event-stream codec.
//! - **Polly**: REST-JSON `POST /v1/speech` (`Engine`, `OutputFormat: pcm`, `SampleRate`,
//!   `Text`, `VoiceId`), answered with 16 kHz PCM silence as long as the text would take.
//!
//! Faults, set per double: `Fault::Expired` answers 403 `ExpiredTokenException`,
//! `Fault::Throttled` Transcribe's 429 `LimitExceededException` or Polly's 400
//! `ThrottlingException`, `Fault::ThrottledMidStream` sends Transcribe's
//! `LimitExceededException` as an exception message after the first partial result.
//!
//! What a double cannot show: real recognition, AWS's own limits and timings, and whether
//! the production task role's credentials are accepted (the tests use static keys).
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_eventstream::frame::{
    DecodedFrame, MessageFrameDecoder, read_message_from, write_message_to,
};
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use aws_smithy_types::str_bytes::StrBytes;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    Expired,
    Throttled,
    ThrottledMidStream,
}

/// What the doubles were sent.
#[derive(Clone, Default)]
pub struct Seen {
    /// Each Transcribe stream: its headers (lower-case names) and the audio bytes it carried.
    pub streams: Arc<Mutex<Vec<Stream>>>,
    /// Each Polly request's JSON and Authorization.
    pub speech: Arc<Mutex<Vec<(Value, String)>>>,
    /// Milliseconds Transcribe takes to finish after the audio ends, and Polly to answer
    /// (a fixed engine latency, for the benchmark).
    pub latency_ms: Arc<std::sync::atomic::AtomicU64>,
}

impl Seen {
    async fn wait(&self) {
        let ms = self.latency_ms.load(std::sync::atomic::Ordering::SeqCst);
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Stream {
    pub headers: Vec<(String, String)>,
    pub audio_bytes: usize,
    pub audio_events: usize,
    /// Every envelope carried `:date` and a 32-byte `:chunk-signature`.
    pub signed: bool,
    /// The empty envelope that ends the audio arrived.
    pub ended: bool,
}

impl Stream {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

pub struct FakeAwsSpeech {
    pub transcribe_url: String,
    pub polly_url: String,
    /// The test CA (PEM) the Transcribe double's certificate chains to.
    pub ca_bundle: PathBuf,
    pub seen: Seen,
    transcribe_fault: Arc<Mutex<Fault>>,
    polly_fault: Arc<Mutex<Fault>>,
    _dir: tempfile::TempDir,
}

#[derive(Clone)]
struct Double {
    seen: Seen,
    transcript: String,
    transcribe_fault: Arc<Mutex<Fault>>,
    polly_fault: Arc<Mutex<Fault>>,
}

impl FakeAwsSpeech {
    /// Both doubles; Transcribe hears `transcript` in whatever audio it is sent.
    pub async fn start(transcript: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (ca, cert, key) = certificates(&dir.path().to_path_buf());
        let double = Double {
            seen: Seen::default(),
            transcript: transcript.to_string(),
            transcribe_fault: Arc::new(Mutex::new(Fault::None)),
            polly_fault: Arc::new(Mutex::new(Fault::None)),
        };
        let transcribe_url = transcribe(&double, &cert, &key).await;
        let app = Router::new()
            .route("/v1/speech", post(speech))
            .with_state(double.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let polly_url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeAwsSpeech {
            transcribe_url,
            polly_url,
            ca_bundle: ca,
            seen: double.seen,
            transcribe_fault: double.transcribe_fault,
            polly_fault: double.polly_fault,
            _dir: dir,
        }
    }

    /// From now on Transcribe's final result comes `latency` after the audio ends, and
    /// Polly answers after `latency`.
    pub fn answer_after(&self, latency: Duration) {
        self.seen.latency_ms.store(
            u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
            std::sync::atomic::Ordering::SeqCst,
        );
    }

    pub fn transcribe_fails_with(&self, fault: Fault) {
        *self.transcribe_fault.lock().expect("lock") = fault;
    }

    pub fn polly_fails_with(&self, fault: Fault) {
        *self.polly_fault.lock().expect("lock") = fault;
    }

    /// The service's settings for this double (VOICE_ENGINE=aws and AWS's own variables).
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("VOICE_ENGINE", "aws".into()),
            ("AWS_REGION", "eu-west-1".into()),
            ("AWS_ACCESS_KEY_ID", "AKIAFAKEFAKEFAKEFAKE".into()),
            (
                "AWS_SECRET_ACCESS_KEY",
                "fake/secret/for/the/doubles".into(),
            ),
            (
                "AWS_ENDPOINT_URL_TRANSCRIBE_STREAMING",
                self.transcribe_url.clone(),
            ),
            ("AWS_ENDPOINT_URL_POLLY", self.polly_url.clone()),
            (
                "AWS_CA_BUNDLE",
                self.ca_bundle.to_string_lossy().into_owned(),
            ),
        ]
    }
}

/// A test CA and a certificate for 127.0.0.1 signed by it (openssl, as the image tests do).
fn certificates(dir: &PathBuf) -> (PathBuf, PathBuf, PathBuf) {
    let p = |n: &str| dir.join(n);
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::write(
        p("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext");
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=LearnTrac test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    (p("ca.pem"), p("server.pem"), p("server.key"))
}

/// The Transcribe Streaming double: TLS with ALPN h2 only, then HTTP/2.
async fn transcribe(double: &Double, cert: &PathBuf, key: &PathBuf) -> String {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .expect("cert")
        .collect::<Result<Vec<_>, _>>()
        .expect("cert");
    let key = PrivateKeyDer::from_pem_file(key).expect("key");
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("server config");
    config.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("https://{}", listener.local_addr().expect("addr"));
    let double = double.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            // As AWS's front ends do: small frames (a partial result) go out at once.
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let double = double.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut conn) = h2::server::handshake(tls).await else {
                    return;
                };
                while let Some(Ok((request, respond))) = conn.accept().await {
                    tokio::spawn(stream_transcription(double.clone(), request, respond));
                }
            });
        }
    });
    url
}

fn string(v: &str) -> HeaderValue {
    HeaderValue::String(StrBytes::from(v.to_string()))
}

fn encode(message: &Message) -> bytes::Bytes {
    let mut buf = Vec::new();
    write_message_to(message, &mut buf).expect("encode");
    buf.into()
}

/// A TranscriptEvent with one result.
fn transcript_event(text: &str, partial: bool) -> bytes::Bytes {
    let payload = json!({"Transcript": {"Results": [{
        "ResultId": "r-1",
        "StartTime": 0.0,
        "EndTime": 1.0,
        "IsPartial": partial,
        "Alternatives": [{"Transcript": text, "Items": []}],
    }]}});
    encode(
        &Message::new(payload.to_string().into_bytes())
            .add_header(Header::new(":message-type", string("event")))
            .add_header(Header::new(":event-type", string("TranscriptEvent")))
            .add_header(Header::new(":content-type", string("application/json"))),
    )
}

fn exception(kind: &str, message: &str) -> bytes::Bytes {
    encode(
        &Message::new(json!({"Message": message}).to_string().into_bytes())
            .add_header(Header::new(":message-type", string("exception")))
            .add_header(Header::new(":exception-type", string(kind)))
            .add_header(Header::new(":content-type", string("application/json"))),
    )
}

/// A REST-JSON error as AWS sends it: status, `x-amzn-errortype`, `{"message"}`.
fn h2_error(
    mut respond: h2::server::SendResponse<bytes::Bytes>,
    status: u16,
    kind: &str,
    message: &str,
) {
    let response = http::Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amzn-errortype", format!("{kind}:"))
        .header("x-amzn-requestid", "fake-request")
        .body(())
        .expect("response");
    if let Ok(mut body) = respond.send_response(response, false) {
        let _ = body.send_data(
            json!({"message": message}).to_string().into_bytes().into(),
            true,
        );
    }
}

async fn stream_transcription(
    double: Double,
    request: http::Request<h2::RecvStream>,
    respond: h2::server::SendResponse<bytes::Bytes>,
) {
    let (parts, mut body) = request.into_parts();
    let mut seen = Stream {
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        signed: true,
        ..Stream::default()
    };
    let index = {
        let mut streams = double.seen.streams.lock().expect("lock");
        streams.push(seen.clone());
        streams.len() - 1
    };
    let record = |s: &Stream| double.seen.streams.lock().expect("lock")[index] = s.clone();
    let expect = |name: &str, want: &str| seen.header(name) == Some(want);
    let authorised = seen.header("authorization").is_some_and(|a| {
        a.starts_with("AWS4-HMAC-SHA256 ") && a.contains("/transcribe/aws4_request")
    });
    if parts.method != http::Method::POST
        || parts.uri.path() != "/stream-transcription"
        || !expect("content-type", "application/vnd.amazon.eventstream")
        || !expect("x-amzn-transcribe-sample-rate", "16000")
        || !expect("x-amzn-transcribe-media-encoding", "pcm")
        || seen.header("x-amzn-transcribe-language-code").is_none()
        || !authorised
    {
        return h2_error(
            respond,
            400,
            "BadRequestException",
            "the request is not a PCM stream transcription",
        );
    }
    let fault = *double.transcribe_fault.lock().expect("lock");
    match fault {
        Fault::Expired => {
            return h2_error(
                respond,
                403,
                "ExpiredTokenException",
                "The security token included in the request is expired",
            );
        }
        Fault::Throttled => {
            return h2_error(
                respond,
                429,
                "LimitExceededException",
                "You have exceeded the maximum number of concurrent transcription streams",
            );
        }
        Fault::None | Fault::ThrottledMidStream => {}
    }
    let mut respond = respond;
    let response = http::Response::builder()
        .status(200)
        .header("content-type", "application/vnd.amazon.eventstream")
        .header("x-amzn-request-id", "fake-request")
        .header("x-amzn-transcribe-session-id", "fake-session")
        .header(
            "x-amzn-transcribe-language-code",
            seen.header("x-amzn-transcribe-language-code").unwrap_or(""),
        )
        .header("x-amzn-transcribe-sample-rate", "16000")
        .header("x-amzn-transcribe-media-encoding", "pcm")
        .body(())
        .expect("response");
    let Ok(mut out) = respond.send_response(response, false) else {
        return;
    };
    let words: Vec<&str> = double.transcript.split_whitespace().collect();
    let mut decoder = MessageFrameDecoder::new();
    let mut buffered = bytes::BytesMut::new();
    let mut partials = 0usize;
    // 0.4 s of 16 kHz 16-bit audio.
    const STEP: usize = 12_800;
    while let Some(chunk) = body.data().await {
        let Ok(chunk) = chunk else { return };
        let _ = body.flow_control().release_capacity(chunk.len());
        buffered.extend_from_slice(&chunk);
        loop {
            let envelope = match decoder.decode_frame(&mut buffered) {
                Ok(DecodedFrame::Complete(m)) => m,
                Ok(DecodedFrame::Incomplete) => break,
                Err(_) => {
                    let _ = out.send_data(
                        exception("BadRequestException", "a frame could not be decoded"),
                        true,
                    );
                    return;
                }
            };
            let names: Vec<&str> = envelope
                .headers()
                .iter()
                .map(|h| h.name().as_str())
                .collect();
            let signature_ok = envelope.headers().iter().any(|h| {
                h.name().as_str() == ":chunk-signature"
                    && h.value().as_byte_array().is_ok_and(|b| b.len() == 32)
            });
            seen.signed &= names.contains(&":date") && signature_ok;
            if envelope.payload().is_empty() {
                seen.ended = true;
                record(&seen);
                continue;
            }
            let Ok(inner) = read_message_from(envelope.payload().clone()) else {
                let _ = out.send_data(
                    exception("BadRequestException", "an envelope held no message"),
                    true,
                );
                return;
            };
            let is_audio = inner.headers().iter().any(|h| {
                h.name().as_str() == ":event-type"
                    && h.value()
                        .as_string()
                        .is_ok_and(|v| v.as_str() == "AudioEvent")
            });
            if is_audio {
                seen.audio_events += 1;
                seen.audio_bytes += inner.payload().len();
                record(&seen);
            }
            while partials < words.len() && seen.audio_bytes >= (partials + 1) * STEP {
                partials += 1;
                if fault == Fault::ThrottledMidStream && partials == 2 {
                    let _ = out.send_data(
                        exception(
                            "LimitExceededException",
                            "You have exceeded the maximum audio rate",
                        ),
                        true,
                    );
                    return;
                }
                let _ = out.send_data(transcript_event(&words[..partials].join(" "), true), false);
            }
        }
        if seen.ended {
            break;
        }
    }
    record(&seen);
    double.seen.wait().await;
    let text = if seen.audio_bytes > 0 {
        double.transcript.clone()
    } else {
        String::new()
    };
    let _ = out.send_data(transcript_event(&text, false), false);
    let _ = out.send_data(bytes::Bytes::new(), true);
}

fn polly_error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        [
            ("x-amzn-errortype", format!("{kind}:")),
            ("content-type", "application/json".to_string()),
        ],
        json!({"message": message}).to_string(),
    )
        .into_response()
}

/// `POST /v1/speech`: SynthesizeSpeech, checked as Polly checks it.
async fn speech(State(d): State<Double>, headers: HeaderMap, body: Bytes) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return polly_error(
            StatusCode::BAD_REQUEST,
            "SerializationException",
            "not JSON",
        );
    };
    d.seen
        .speech
        .lock()
        .expect("lock")
        .push((req.clone(), auth.clone()));
    d.seen.wait().await;
    if !(auth.starts_with("AWS4-HMAC-SHA256 ") && auth.contains("/polly/aws4_request")) {
        return polly_error(
            StatusCode::FORBIDDEN,
            "UnrecognizedClientException",
            "The security token included in the request is invalid",
        );
    }
    match *d.polly_fault.lock().expect("lock") {
        Fault::Expired => {
            return polly_error(
                StatusCode::FORBIDDEN,
                "ExpiredTokenException",
                "The security token included in the request is expired",
            );
        }
        Fault::Throttled => {
            return polly_error(
                StatusCode::BAD_REQUEST,
                "ThrottlingException",
                "Rate exceeded",
            );
        }
        _ => {}
    }
    let text = req["Text"].as_str().unwrap_or("");
    if text.is_empty() || text.chars().count() > 3000 {
        return polly_error(
            StatusCode::BAD_REQUEST,
            "TextLengthExceededException",
            "Text must be 1 to 3000 characters",
        );
    }
    if req["OutputFormat"] != "pcm" || !matches!(req["SampleRate"].as_str(), Some("8000" | "16000"))
    {
        return polly_error(
            StatusCode::BAD_REQUEST,
            "InvalidSampleRateException",
            "pcm is 8000 or 16000 Hz",
        );
    }
    if req["VoiceId"].as_str().is_none_or(str::is_empty)
        || !matches!(
            req["Engine"].as_str(),
            Some("standard" | "neural" | "generative" | "long-form")
        )
    {
        return polly_error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "VoiceId and Engine are required",
        );
    }
    // About 15 characters a second of speech, silence.
    let seconds = (text.chars().count() as f64 / 15.0).max(0.3);
    let samples = (seconds * 16_000.0) as usize;
    (
        StatusCode::OK,
        [
            ("content-type", "audio/pcm".to_string()),
            ("x-amzn-requestcharacters", text.chars().count().to_string()),
        ],
        vec![0u8; samples * 2],
    )
        .into_response()
}
