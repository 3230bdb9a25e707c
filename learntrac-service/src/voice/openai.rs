//! OpenAI-compatible audio (`VOICE_ENGINE=openai`): free-form speech through
//! `POST /audio/transcriptions` (multipart: the WAV as `file`, `model`, `response_format`,
//! and a `prompt` of the student's concept names to bias the spelling) and
//! `POST /audio/speech` (JSON: `model`, `input`, `voice`, `response_format: wav`). OpenAI
//! serves both, as do self-hosted Whisper servers that speak the same API. Errors are mapped
//! as the chat's are: 429 with its `Retry-After`, other statuses with the body's
//! `error.message` (for the operator's log only), a server gone quiet bounded by `stall`.

use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::Value;

use super::{Recognizer, SAMPLE_RATE, SpeechError, Synthesizer, wav};
use crate::tutor::model::{error_message, retry_after, without_url};

/// VOICE_* settings for this engine.
#[derive(Clone)]
pub struct OpenAiVoiceConfig {
    /// e.g. `https://api.openai.com/v1`; `/audio/…` is appended.
    pub base_url: String,
    pub api_key: Option<String>,
    pub stt_model: String,
    pub tts_model: String,
    pub voice: String,
    /// The longest the server may keep us waiting for a reply, or between its parts.
    pub stall: Duration,
}

impl std::fmt::Debug for OpenAiVoiceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiVoiceConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .field("stt_model", &self.stt_model)
            .field("tts_model", &self.tts_model)
            .field("voice", &self.voice)
            .finish_non_exhaustive()
    }
}

const ENGINE: &str = "openai-audio";
/// The speech endpoint's input limit (characters).
const MAX_INPUT: usize = 4096;
/// The transcription prompt's budget: Whisper reads only its last 224 tokens.
const MAX_PROMPT: usize = 800;

pub struct OpenAiSpeech {
    config: OpenAiVoiceConfig,
    http: reqwest::Client,
}

impl OpenAiSpeech {
    pub fn new(config: OpenAiVoiceConfig) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(OpenAiSpeech { config, http })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.config.base_url.trim_end_matches('/'))
    }

    /// Sends and reads the whole reply, bounded by `stall`; a non-2xx is an error.
    async fn call(&self, req: reqwest::RequestBuilder) -> Result<Vec<u8>, SpeechError> {
        let req = match &self.config.api_key {
            Some(key) => req.bearer_auth(key),
            None => req,
        };
        let stall = self.config.stall;
        let resp = tokio::time::timeout(stall, req.send())
            .await
            .map_err(|_| SpeechError::TimedOut(ENGINE))?
            .map_err(|e| SpeechError::engine(ENGINE, without_url(e)))?;
        let status = resp.status();
        if status.as_u16() == 429 {
            return Err(SpeechError::RateLimited {
                engine: ENGINE,
                retry_after: retry_after(&resp),
            });
        }
        let body = tokio::time::timeout(stall, resp.bytes())
            .await
            .map_err(|_| SpeechError::TimedOut(ENGINE))?
            .map_err(|e| SpeechError::engine(ENGINE, without_url(e)))?;
        if !status.is_success() {
            return Err(SpeechError::engine(
                ENGINE,
                format!(
                    "HTTP {}: {}",
                    status.as_u16(),
                    error_message(&String::from_utf8_lossy(&body))
                ),
            ));
        }
        Ok(body.to_vec())
    }
}

/// A multipart/form-data body: text fields, then one file. The boundary is chosen so that
/// it occurs nowhere in the parts.
pub fn multipart(fields: &[(&str, &str)], file: (&str, &str, &str, &[u8])) -> (String, Vec<u8>) {
    let (name, filename, content_type, data) = file;
    let mut n: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let boundary = loop {
        let b = format!("learntrac-{n:016x}");
        let clash = data.windows(b.len()).any(|w| w == b.as_bytes())
            || fields.iter().any(|(_, v)| v.contains(&b));
        if !clash {
            break b;
        }
        n = n.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    };
    let mut body = Vec::with_capacity(data.len() + 512);
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

impl Recognizer for OpenAiSpeech {
    fn transcribe<'a>(
        &'a self,
        pcm: &'a [i16],
        topics: &'a [String],
    ) -> BoxFuture<'a, Result<String, SpeechError>> {
        Box::pin(async move {
            let audio = wav::encode(pcm, SAMPLE_RATE);
            // The student's concept names, so "quadratic" is spelt as the course spells it;
            // a prompt is a hint, not a grammar: anything can still be heard.
            let mut prompt = String::new();
            for t in topics {
                if prompt.len() + t.len() + 2 > MAX_PROMPT {
                    break;
                }
                if !prompt.is_empty() {
                    prompt.push_str(", ");
                }
                prompt.push_str(t);
            }
            let mut fields = vec![
                ("model", self.config.stt_model.as_str()),
                ("response_format", "json"),
            ];
            if !prompt.is_empty() {
                fields.push(("prompt", prompt.as_str()));
            }
            let (content_type, body) =
                multipart(&fields, ("file", "question.wav", "audio/wav", &audio));
            let reply = self
                .call(
                    self.http
                        .post(self.url("audio/transcriptions"))
                        .header(reqwest::header::CONTENT_TYPE, content_type)
                        .body(body),
                )
                .await?;
            let v: Value = serde_json::from_slice(&reply).map_err(|e| {
                SpeechError::engine(ENGINE, format!("the transcription is not JSON: {e}"))
            })?;
            v["text"]
                .as_str()
                .map(|t| t.trim().to_string())
                .ok_or_else(|| SpeechError::engine(ENGINE, "the transcription has no `text`"))
        })
    }
}

impl Synthesizer for OpenAiSpeech {
    fn speak<'a>(&'a self, text: &'a str) -> BoxFuture<'a, Result<Vec<u8>, SpeechError>> {
        Box::pin(async move {
            let input: String = text.chars().take(MAX_INPUT).collect();
            let body = serde_json::json!({
                "model": self.config.tts_model,
                "input": input,
                "voice": self.config.voice,
                "response_format": "wav",
            });
            let wav = self
                .call(self.http.post(self.url("audio/speech")).json(&body))
                .await?;
            if !wav.starts_with(b"RIFF") {
                return Err(SpeechError::engine(ENGINE, "the speech is not a WAV file"));
            }
            Ok(wav)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::multipart;

    #[test]
    fn a_multipart_body_has_each_part_and_a_boundary_found_nowhere_inside() {
        let data = b"RIFF....WAVEdata learntrac-".to_vec();
        let (ct, body) = multipart(
            &[("model", "whisper-1"), ("response_format", "json")],
            ("file", "question.wav", "audio/wav", &data),
        );
        let boundary = ct
            .strip_prefix("multipart/form-data; boundary=")
            .unwrap_or("");
        assert!(!boundary.is_empty());
        let text = String::from_utf8_lossy(&body);
        assert_eq!(text.matches(&format!("--{boundary}\r\n")).count(), 3);
        assert!(text.ends_with(&format!("--{boundary}--\r\n")));
        assert!(text.contains("name=\"model\"\r\n\r\nwhisper-1\r\n"));
        assert!(text.contains(
            "name=\"file\"; filename=\"question.wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFF"
        ));
    }
}
