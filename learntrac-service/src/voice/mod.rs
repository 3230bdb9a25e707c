//! The voice tutor's speech: recognition and synthesis behind two small traits, so the
//! engines can change without touching the socket. `local` runs on the service's own
//! machine: PocketSphinx recognises against a grammar built from the student's concepts
//! (reliable where open dictation is not), espeak-ng speaks. `openai` sends the audio to an
//! OpenAI-compatible endpoint and hears free-form speech. `aws` streams it to Amazon
//! Transcribe while the student is still speaking (what it has heard so far reaches the
//! page) and speaks through Amazon Polly.

pub mod aws;
pub mod grammar;
pub mod local;
pub mod openai;
pub mod wav;

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

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
    /// Whether this engine hears an utterance while it is spoken (`listen`).
    fn listens(&self) -> bool {
        false
    }

    /// A recognition that hears the utterance while it is spoken, for engines that can
    /// (None: the socket buffers the utterance and calls `transcribe` at its end).
    fn listen(&self) -> Option<Listening> {
        None
    }

    /// The words said in `pcm` (16 kHz mono), among phrases about `topics`; empty when
    /// nothing was recognised.
    fn transcribe<'a>(
        &'a self,
        pcm: &'a [i16],
        topics: &'a [String],
    ) -> BoxFuture<'a, Result<String, SpeechError>>;
}

/// One utterance being recognised as it is spoken: the socket hands it each frame, reads
/// what has been heard so far, and at the end waits for the whole transcript. Dropped, the
/// recognition stops (a cancelled question, a closed socket).
pub struct Listening {
    audio: mpsc::UnboundedSender<Vec<u8>>,
    /// What has been heard so far, each time it changes (the latest supersedes the others).
    pub heard_so_far: mpsc::Receiver<String>,
    result: tokio::task::JoinHandle<Result<String, SpeechError>>,
    engine: &'static str,
    /// How long the transcript may take once the utterance has ended.
    wait: std::time::Duration,
}

impl Listening {
    /// Starts `recognise` (whose transcript may take `wait` after the utterance), which reads the audio from its receiver (16 kHz mono 16-bit LE
    /// PCM, frame by frame, ended when the sender is dropped) and reports progress on its
    /// sender; the audio channel is unbounded because the utterance cap bounds it.
    pub fn start<F>(
        engine: &'static str,
        wait: std::time::Duration,
        recognise: impl FnOnce(mpsc::UnboundedReceiver<Vec<u8>>, mpsc::Sender<String>) -> F,
    ) -> Self
    where
        F: std::future::Future<Output = Result<String, SpeechError>> + Send + 'static,
    {
        let (audio, frames) = mpsc::unbounded_channel();
        let (progress, heard_so_far) = mpsc::channel(8);
        Listening {
            audio,
            heard_so_far,
            result: tokio::spawn(recognise(frames, progress)),
            engine,
            wait,
        }
    }

    /// One frame of the utterance.
    pub fn hear(&self, frame: &[u8]) {
        // A recognition that already ended (failed) says why when finished.
        let _ = self.audio.send(frame.to_vec());
    }

    /// The utterance has ended: no more audio (the engine starts to finish at once).
    pub fn end(&mut self) {
        let (closed, _) = mpsc::unbounded_channel();
        drop(std::mem::replace(&mut self.audio, closed));
    }

    /// The whole transcript, once the utterance has ended.
    pub async fn finish(mut self) -> Result<String, SpeechError> {
        self.end();
        match tokio::time::timeout(self.wait, &mut self.result).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => Err(SpeechError::engine(self.engine, e)),
            Err(_) => Err(SpeechError::TimedOut(self.engine)),
        }
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.result.abort();
    }
}

pub trait Synthesizer: Send + Sync {
    /// `text` spoken, as a WAV file.
    fn speak<'a>(&'a self, text: &'a str) -> BoxFuture<'a, Result<Vec<u8>, SpeechError>>;
}

impl<T: Recognizer + ?Sized> Recognizer for std::sync::Arc<T> {
    fn listens(&self) -> bool {
        (**self).listens()
    }

    fn listen(&self) -> Option<Listening> {
        (**self).listen()
    }

    fn transcribe<'a>(
        &'a self,
        pcm: &'a [i16],
        topics: &'a [String],
    ) -> BoxFuture<'a, Result<String, SpeechError>> {
        (**self).transcribe(pcm, topics)
    }
}

impl<T: Synthesizer + ?Sized> Synthesizer for std::sync::Arc<T> {
    fn speak<'a>(&'a self, text: &'a str) -> BoxFuture<'a, Result<Vec<u8>, SpeechError>> {
        (**self).speak(text)
    }
}

/// The engines a deployment has.
pub struct Voice {
    pub recognizer: Box<dyn Recognizer>,
    pub synthesizer: Box<dyn Synthesizer>,
    /// Seconds of speech a student may send per UTC day (VOICE_DAILY_SECONDS).
    pub daily_seconds: i64,
}
