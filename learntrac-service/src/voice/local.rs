//! Engines that run beside the service: PocketSphinx (`pocketsphinx_continuous`, with
//! Debian's `pocketsphinx-en-us` model) and espeak-ng. Each call is one process, bounded
//! in time and killed if the request goes away.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::{Recognizer, SAMPLE_RATE, SpeechError, Synthesizer, grammar, wav};

/// Where Debian's `pocketsphinx-en-us` puts the pronunciation dictionary.
pub const DEBIAN_DICTIONARY: &str = "/usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict";

const ENGINE_TIMEOUT: Duration = Duration::from_secs(20);

/// The first of `names` on PATH.
pub fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

pub struct Pocketsphinx {
    bin: PathBuf,
    dictionary: HashSet<String>,
    /// Where recordings and grammars are written: private to the service's user, under
    /// TMPDIR (in AWS, a task volume: the root filesystem is read-only).
    work: tempfile::TempDir,
}

impl Pocketsphinx {
    /// Finds the program and reads the dictionary's words (`word` and `word(2)` lines).
    pub fn locate(dictionary: &Path) -> Result<Self, String> {
        let bin = on_path("pocketsphinx_continuous")
            .ok_or("pocketsphinx_continuous is not on PATH (Debian: apt-get install pocketsphinx pocketsphinx-en-us)")?;
        let text = std::fs::read_to_string(dictionary)
            .map_err(|e| format!("cannot read the dictionary {}: {e}", dictionary.display()))?;
        let words: HashSet<String> = text
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|w| !w.contains('('))
            .map(str::to_string)
            .collect();
        if let Some(missing) = grammar::fixed_words().find(|w| !words.contains(*w)) {
            return Err(format!(
                "the dictionary {} lacks `{missing}`",
                dictionary.display()
            ));
        }
        Ok(Pocketsphinx {
            bin,
            dictionary: words,
            work: work_folder()?,
        })
    }
}

/// The engines' work folder: a new one under TMPDIR with a random name, mode 0700.
fn work_folder() -> Result<tempfile::TempDir, String> {
    use std::os::unix::fs::PermissionsExt;
    // Explicitly: a folder is otherwise made 0777 less the umask (0755 under Docker's).
    tempfile::Builder::new()
        .prefix("learntrac-voice-")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
        .map_err(|e| {
            format!(
                "cannot make a private work folder under {} (set TMPDIR to a writable folder): {e}",
                std::env::temp_dir().display()
            )
        })
}

/// A new file in the engines' private folder (mode 0700, made at start): created
/// exclusively with mode 0600 under an unpredictable name, so no other local user can read
/// a student's recording or plant a link or FIFO where it will be written. Removed when
/// dropped.
fn private_file(dir: &Path, ext: &str) -> Result<tempfile::TempPath, SpeechError> {
    tempfile::Builder::new()
        .prefix("utterance-")
        .suffix(&format!(".{ext}"))
        .tempfile_in(dir)
        .map(tempfile::NamedTempFile::into_temp_path)
        .map_err(|e| SpeechError::engine("pocketsphinx", format!("cannot create a work file: {e}")))
}

impl Recognizer for Pocketsphinx {
    fn transcribe<'a>(
        &'a self,
        pcm: &'a [i16],
        topics: &'a [String],
    ) -> BoxFuture<'a, Result<String, SpeechError>> {
        Box::pin(async move {
            const ENGINE: &str = "pocketsphinx";
            let audio = private_file(self.work.path(), "wav")?;
            let gram = private_file(self.work.path(), "gram")?;
            tokio::fs::write(&audio, wav::encode(pcm, SAMPLE_RATE))
                .await
                .map_err(|e| SpeechError::engine(ENGINE, e))?;
            let topics = grammar::topics(topics, &self.dictionary);
            tokio::fs::write(&gram, grammar::jsgf(&topics))
                .await
                .map_err(|e| SpeechError::engine(ENGINE, e))?;
            let run = Command::new(&self.bin)
                .arg("-infile")
                .arg(&*audio)
                .arg("-jsgf")
                .arg(&*gram)
                .args(["-logfn", "/dev/null"])
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .output();
            let out = tokio::time::timeout(ENGINE_TIMEOUT, run)
                .await
                .map_err(|_| SpeechError::TimedOut(ENGINE))?
                .map_err(|e| SpeechError::engine(ENGINE, e))?;
            if !out.status.success() {
                return Err(SpeechError::engine(ENGINE, format!("exit {}", out.status)));
            }
            // One line per utterance it heard; a pause can split a question in two.
            let text = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            Ok(text)
        })
    }
}

pub struct EspeakNg {
    bin: PathBuf,
}

impl EspeakNg {
    pub fn locate() -> Result<Self, String> {
        on_path("espeak-ng")
            .map(|bin| EspeakNg { bin })
            .ok_or_else(|| "espeak-ng is not on PATH (Debian: apt-get install espeak-ng)".into())
    }
}

/// The most text spoken at once (the answer's start; the page shows all of it).
const MAX_SPOKEN: usize = 1500;

impl Synthesizer for EspeakNg {
    fn speak<'a>(&'a self, text: &'a str) -> BoxFuture<'a, Result<Vec<u8>, SpeechError>> {
        Box::pin(async move {
            const ENGINE: &str = "espeak-ng";
            let text: String = text.chars().take(MAX_SPOKEN).collect();
            // The text goes on stdin, never as an argument: it cannot become an option.
            let mut child = Command::new(&self.bin)
                .args(["-v", "en-us", "-s", "165", "--stdout"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| SpeechError::engine(ENGINE, e))?;
            let mut stdin = child
                .stdin
                .take()
                .ok_or_else(|| SpeechError::engine(ENGINE, "no stdin"))?;
            let feed = async move {
                stdin.write_all(text.as_bytes()).await?;
                stdin.shutdown().await
            };
            let (fed, out) = tokio::time::timeout(ENGINE_TIMEOUT, async {
                tokio::join!(feed, child.wait_with_output())
            })
            .await
            .map_err(|_| SpeechError::TimedOut(ENGINE))?;
            fed.map_err(|e| SpeechError::engine(ENGINE, e))?;
            let out = out.map_err(|e| SpeechError::engine(ENGINE, e))?;
            let mut wav = out.stdout;
            if !out.status.success() || !wav.starts_with(b"RIFF") {
                return Err(SpeechError::engine(
                    ENGINE,
                    format!("exit {}, no WAV", out.status),
                ));
            }
            // Writing to a pipe, espeak-ng cannot go back to fill in the sizes; fill them in.
            if wav.len() >= 44 && &wav[36..40] == b"data" {
                let total = u32::try_from(wav.len() - 8).unwrap_or(u32::MAX);
                wav[4..8].copy_from_slice(&total.to_le_bytes());
                let data = u32::try_from(wav.len() - 44).unwrap_or(u32::MAX);
                wav[40..44].copy_from_slice(&data.to_le_bytes());
            }
            Ok(wav)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn recordings_are_private_and_never_at_a_name_someone_could_plant() {
        let work = work_folder().expect("work folder");
        let mode = |p: &Path| std::fs::metadata(p).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(
            mode(work.path()).ok(),
            Some(0o700),
            "only the service's user enters"
        );
        let a = private_file(work.path(), "wav").expect("file");
        let b = private_file(work.path(), "wav").expect("file");
        assert_ne!(*a, *b);
        assert_eq!(
            mode(&a).ok(),
            Some(0o600),
            "a recording is the service's alone"
        );
        // The folder's name is random too (the old files were learntrac-voice-PID-N.wav in
        // the shared temp folder, where another user could plant a FIFO or a link).
        let other = work_folder().expect("work folder");
        assert_ne!(work.path(), other.path());
        let name = a.file_name().and_then(|n| n.to_str()).unwrap_or("");
        assert!(!name.contains(&std::process::id().to_string()), "{name}");
        // Removed with its guard.
        let path = a.to_path_buf();
        drop(a);
        assert!(!path.exists());
    }
}
