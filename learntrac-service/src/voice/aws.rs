//! Amazon's speech (`VOICE_ENGINE=aws`), through the official SDKs and the task role's
//! credentials: Transcribe Streaming hears the student while they speak (HTTP/2, audio
//! frames up as an event stream, transcripts down as another; what is heard so far goes to
//! the page) and Polly speaks each sentence (16 kHz PCM, wrapped as WAV for the page).
//!
//! Settings are AWS's own variables, read from the service's environment: AWS_REGION
//! (Fargate sets it), AWS_ENDPOINT_URL[_TRANSCRIBE_STREAMING|_POLLY], AWS_CA_BUNDLE, and
//! static keys when given (else the default chain: the task role on ECS). The task role
//! needs `transcribe:StartStreamTranscription` and `polly:SynthesizeSpeech`, which the
//! rendered stack grants only where an environment chooses this engine.

use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use aws_sdk_polly::error::ProvideErrorMetadata;
use aws_sdk_transcribestreaming::primitives::Blob;
use aws_sdk_transcribestreaming::types::error::AudioStreamError;
use aws_sdk_transcribestreaming::types::{
    AudioEvent, AudioStream, LanguageCode, MediaEncoding, TranscriptResultStream,
};
use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

use super::{Listening, Recognizer, SAMPLE_RATE, SpeechError, Synthesizer, wav};

const TRANSCRIBE: &str = "aws-transcribe";
const POLLY: &str = "aws-polly";
/// Polly's limit on billed characters per request (sentences are far shorter).
const MAX_TEXT: usize = 3000;
/// Transcribe Streaming's advice: 50–200 ms of audio per event.
const CHUNK_BYTES: usize = 2 * SAMPLE_RATE as usize / 10;
/// What a throttled caller is told to wait when AWS gives no time (it never does).
const THROTTLED_WAIT: u64 = 5;

/// AWS_* and VOICE_* settings for this engine.
#[derive(Clone, Default)]
pub struct AwsVoiceConfig {
    pub region: Option<String>,
    pub transcribe_endpoint: Option<String>,
    pub polly_endpoint: Option<String>,
    /// Extra roots (PEM) trusted beside the system's: a proxy's or a test's CA.
    pub ca_bundle: Option<PathBuf>,
    /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, when set.
    pub keys: Option<(String, String, Option<String>)>,
    /// VOICE_LANGUAGE: Transcribe's language code, e.g. en-US.
    pub language: String,
    /// VOICE_TTS_VOICE: Polly's voice, e.g. Joanna.
    pub voice: String,
    /// VOICE_POLLY_ENGINE: standard, neural, …
    pub polly_engine: String,
    /// The longest AWS may keep us waiting for a reply or, after the utterance, its end.
    pub stall: Duration,
}

impl std::fmt::Debug for AwsVoiceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsVoiceConfig")
            .field("region", &self.region)
            .field("transcribe_endpoint", &self.transcribe_endpoint)
            .field("polly_endpoint", &self.polly_endpoint)
            .field("ca_bundle", &self.ca_bundle)
            .field("keys", &self.keys.as_ref().map(|_| "<set>"))
            .field("language", &self.language)
            .field("voice", &self.voice)
            .field("polly_engine", &self.polly_engine)
            .finish_non_exhaustive()
    }
}

pub struct AwsSpeech {
    transcribe: aws_sdk_transcribestreaming::Client,
    polly: aws_sdk_polly::Client,
    config: AwsVoiceConfig,
}

impl AwsSpeech {
    /// The two clients, on the default credential chain unless keys were given.
    pub async fn new(config: AwsVoiceConfig) -> Result<Self, String> {
        // No retries: a student is waiting on every call, the SDK's backoff (seconds, with
        // jitter) would outlast VOICE_STALL_SECONDS, and a stream's audio cannot be replayed;
        // a throttled call tells the student to ask again instead.
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .retry_config(aws_config::retry::RetryConfig::disabled());
        if let Some(region) = &config.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some((id, secret, token)) = &config.keys {
            loader = loader.credentials_provider(aws_sdk_polly::config::Credentials::new(
                id,
                secret,
                token.clone(),
                None,
                "environment",
            ));
        }
        if let Some(path) = &config.ca_bundle {
            let pem = std::fs::read(path)
                .map_err(|e| format!("AWS_CA_BUNDLE {}: {e}", path.display()))?;
            use aws_smithy_http_client::tls;
            let context = tls::TlsContext::builder()
                .with_trust_store(
                    tls::TrustStore::empty()
                        .with_native_roots(true)
                        .with_pem_certificate(pem),
                )
                .build()
                .map_err(|e| format!("AWS_CA_BUNDLE {}: {e}", path.display()))?;
            loader = loader.http_client(
                aws_smithy_http_client::Builder::new()
                    .tls_provider(tls::Provider::rustls(
                        tls::rustls_provider::CryptoMode::AwsLc,
                    ))
                    .tls_context(context)
                    .build_https(),
            );
        }
        let shared = loader.load().await;
        if shared.region().is_none() {
            return Err(
                "VOICE_ENGINE=aws needs a region: set AWS_REGION (ECS sets it in every task)"
                    .into(),
            );
        }
        let mut transcribe = aws_sdk_transcribestreaming::config::Builder::from(&shared);
        if let Some(url) = &config.transcribe_endpoint {
            transcribe = transcribe.endpoint_url(url);
        }
        let mut polly = aws_sdk_polly::config::Builder::from(&shared);
        if let Some(url) = &config.polly_endpoint {
            polly = polly.endpoint_url(url);
        }
        Ok(AwsSpeech {
            transcribe: aws_sdk_transcribestreaming::Client::from_conf(transcribe.build()),
            polly: aws_sdk_polly::Client::from_conf(polly.build()),
            config,
        })
    }
}

/// An AWS error in our terms: throttling is the caller's to wait out; everything else
/// (expired or refused credentials included) is for the operator's log.
fn aws_error(
    engine: &'static str,
    e: &(impl ProvideErrorMetadata + std::error::Error),
) -> SpeechError {
    match e.code() {
        Some(
            "ThrottlingException"
            | "LimitExceededException"
            | "ServiceUnavailableException"
            | "TooManyRequestsException",
        ) => SpeechError::RateLimited {
            engine,
            retry_after: THROTTLED_WAIT,
        },
        Some(code) => SpeechError::engine(
            engine,
            format!("{code}: {}", e.message().unwrap_or("(no message)")),
        ),
        None => SpeechError::engine(
            engine,
            aws_smithy_types::error::display::DisplayErrorContext(e),
        ),
    }
}

/// An exception sent inside the transcript stream: its metadata carries no code, its type
/// says what it is.
fn stream_error(
    e: &aws_sdk_transcribestreaming::error::SdkError<
        aws_sdk_transcribestreaming::types::error::TranscriptResultStreamError,
        aws_smithy_types::event_stream::RawMessage,
    >,
) -> SpeechError {
    use aws_sdk_transcribestreaming::types::error::TranscriptResultStreamError as E;
    match e.as_service_error() {
        Some(E::LimitExceededException(_) | E::ServiceUnavailableException(_)) => {
            SpeechError::RateLimited {
                engine: TRANSCRIBE,
                retry_after: THROTTLED_WAIT,
            }
        }
        _ => aws_error(TRANSCRIBE, e),
    }
}

/// The utterance's frames as Transcribe's audio events, ≤ CHUNK_BYTES each; ends when the
/// socket drops its sender (end of speech).
struct AudioEvents {
    frames: mpsc::UnboundedReceiver<Vec<u8>>,
    pending: Vec<u8>,
}

impl futures_util::Stream for AudioEvents {
    type Item = Result<AudioStream, AudioStreamError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.pending.is_empty() {
            match this.frames.poll_recv(cx) {
                Poll::Ready(Some(frame)) => this.pending = frame,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
        let rest = this.pending.split_off(this.pending.len().min(CHUNK_BYTES));
        let chunk = std::mem::replace(&mut this.pending, rest);
        Poll::Ready(Some(Ok(AudioStream::AudioEvent(
            AudioEvent::builder().audio_chunk(Blob::new(chunk)).build(),
        ))))
    }
}

/// One utterance through Transcribe Streaming: what is heard so far goes to `progress`
/// (finished segments, then the one still partial); the transcript is every finished
/// segment once the stream ends.
async fn recognise(
    client: aws_sdk_transcribestreaming::Client,
    language: String,
    frames: mpsc::UnboundedReceiver<Vec<u8>>,
    progress: mpsc::Sender<String>,
) -> Result<String, SpeechError> {
    let audio = AudioEvents {
        frames,
        pending: Vec::new(),
    };
    let mut out = client
        .start_stream_transcription()
        .language_code(LanguageCode::from(language.as_str()))
        .media_sample_rate_hertz(SAMPLE_RATE as i32)
        .media_encoding(MediaEncoding::Pcm)
        .enable_partial_results_stabilization(true)
        .audio_stream(audio.into())
        .send()
        .await
        .map_err(|e| aws_error(TRANSCRIBE, &e))?;
    let mut finished: Vec<String> = Vec::new();
    while let Some(event) = out
        .transcript_result_stream
        .recv()
        .await
        .map_err(|e| stream_error(&e))?
    {
        let TranscriptResultStream::TranscriptEvent(event) = event else {
            continue;
        };
        let mut partial = String::new();
        for result in event.transcript.iter().flat_map(|t| t.results()) {
            let text = result
                .alternatives()
                .first()
                .and_then(|a| a.transcript())
                .unwrap_or("")
                .trim();
            if text.is_empty() {
                continue;
            }
            if result.is_partial() {
                partial = text.to_string();
            } else {
                finished.push(text.to_string());
            }
        }
        let so_far = finished
            .iter()
            .map(String::as_str)
            .chain((!partial.is_empty()).then_some(partial.as_str()))
            .collect::<Vec<_>>()
            .join(" ");
        // Progress is a courtesy: a page slow to read it misses an update, not the answer.
        let _ = progress.try_send(so_far);
    }
    Ok(finished.join(" "))
}

impl Recognizer for AwsSpeech {
    fn listens(&self) -> bool {
        true
    }

    fn listen(&self) -> Option<Listening> {
        let client = self.transcribe.clone();
        let language = self.config.language.clone();
        Some(Listening::start(
            TRANSCRIBE,
            self.config.stall,
            move |frames, progress| recognise(client, language, frames, progress),
        ))
    }

    fn transcribe<'a>(
        &'a self,
        pcm: &'a [i16],
        _topics: &'a [String],
    ) -> BoxFuture<'a, Result<String, SpeechError>> {
        Box::pin(async move {
            let Some(listening) = self.listen() else {
                return Err(SpeechError::engine(TRANSCRIBE, "cannot listen"));
            };
            let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
            listening.hear(&bytes);
            listening.finish().await
        })
    }
}

impl Synthesizer for AwsSpeech {
    fn speak<'a>(&'a self, text: &'a str) -> BoxFuture<'a, Result<Vec<u8>, SpeechError>> {
        Box::pin(async move {
            use aws_sdk_polly::types::{Engine, OutputFormat, VoiceId};
            let text: String = text.chars().take(MAX_TEXT).collect();
            let stall = self.config.stall;
            let sent = self
                .polly
                .synthesize_speech()
                .engine(Engine::from(self.config.polly_engine.as_str()))
                .voice_id(VoiceId::from(self.config.voice.as_str()))
                .output_format(OutputFormat::Pcm)
                .sample_rate(SAMPLE_RATE.to_string())
                .text(text)
                .send();
            let out = tokio::time::timeout(stall, sent)
                .await
                .map_err(|_| SpeechError::TimedOut(POLLY))?
                .map_err(|e| aws_error(POLLY, &e))?;
            let pcm = tokio::time::timeout(stall, out.audio_stream.collect())
                .await
                .map_err(|_| SpeechError::TimedOut(POLLY))?
                .map_err(|e| SpeechError::engine(POLLY, e))?
                .into_bytes();
            if pcm.is_empty() {
                return Err(SpeechError::engine(POLLY, "Polly answered no audio"));
            }
            Ok(wav::wrap(&pcm, SAMPLE_RATE))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[tokio::test]
    async fn frames_become_audio_events_of_at_most_200_ms_and_end_with_the_utterance() {
        let (tx, frames) = mpsc::unbounded_channel();
        let mut events = AudioEvents {
            frames,
            pending: Vec::new(),
        };
        tx.send(vec![1u8; CHUNK_BYTES * 2 + 10]).ok();
        tx.send(vec![2u8; 20]).ok();
        drop(tx);
        let mut sizes = Vec::new();
        while let Some(Ok(AudioStream::AudioEvent(e))) = events.next().await {
            sizes.push(e.audio_chunk().map_or(0, |b| b.as_ref().len()));
        }
        assert_eq!(sizes, [CHUNK_BYTES, CHUNK_BYTES, 10, 20]);
    }
}
