//! The voice tutor's speech: recognition and synthesis behind two small traits, so the
//! engines can change without touching the socket. `local` runs on the service's own
//! machine: PocketSphinx recognises against a grammar built from the student's concepts
//! (reliable where open dictation is not), espeak-ng speaks. `openai` sends the audio to an
//! OpenAI-compatible endpoint and hears free-form speech. (Amazon Transcribe and Polly are
//! not built yet.)

pub mod grammar;
pub mod local;
pub mod openai;
pub mod wav;

use futures_util::future::BoxFuture;

/// Audio the browser streams: 16 kHz, mono, signed 16-bit little-endian PCM.
pub const SAMPLE_RATE: u32 = 16_000;

/// The longest utterance taken, in seconds (a question, not a lecture).
pub const MAX_UTTERANCE_SECONDS: usize = 30;

#[derive(Debug, thiserror::Error)]
pub enum SpeechError {
    #[error("the speech engine {engine} failed: {message}")]
    Engine {
        engine: &'static str,
        message: String,
    },
    #[error("the speech engine {0} took too long")]
    TimedOut(&'static str),
    #[error("the speech engine {engine} is rate limited; retry in {retry_after} s")]
    RateLimited {
        engine: &'static str,
        retry_after: u64,
    },
}

impl SpeechError {
    /// An engine's failure, in the operator's words (never shown to a student).
    pub fn engine(engine: &'static str, e: impl std::fmt::Display) -> Self {
        SpeechError::Engine {
            engine,
            message: e.to_string(),
        }
    }
}

pub trait Recognizer: Send + Sync {
    /// The words said in `pcm` (16 kHz mono), among phrases about `topics`; empty when
    /// nothing was recognised.
    fn transcribe<'a>(
        &'a self,
        pcm: &'a [i16],
        topics: &'a [String],
    ) -> BoxFuture<'a, Result<String, SpeechError>>;
}

pub trait Synthesizer: Send + Sync {
    /// `text` spoken, as a WAV file.
    fn speak<'a>(&'a self, text: &'a str) -> BoxFuture<'a, Result<Vec<u8>, SpeechError>>;
}

/// The engines a deployment has.
pub struct Voice {
    pub recognizer: Box<dyn Recognizer>,
    pub synthesizer: Box<dyn Synthesizer>,
    /// Seconds of speech a student may send per UTC day (VOICE_DAILY_SECONDS).
    pub daily_seconds: i64,
}
