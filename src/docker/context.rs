//! Build contexts: the folder as a tar stream, honouring `.dockerignore` the way Docker
//! does (moby's patternmatcher): patterns are relative to the context root, `*` and `?`
//! stay within a path segment, `**` crosses segments, a pattern that matches a folder
//! excludes everything under it, `!` re-includes, and the last matching pattern wins.

use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};

use crate::error::{Error, Result};

/// Where the rendered Dockerfile goes inside the context.
pub const DOCKERFILE: &str = ".learntrac.Dockerfile";

struct Rule {
    matcher: GlobMatcher,
    exclude: bool,
}

pub struct DockerIgnore {
    rules: Vec<Rule>,
}

impl DockerIgnore {
    pub fn parse(text: &str) -> Result<Self, globset::Error> {
        let mut rules = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exclude, pattern) = match line.strip_prefix('!') {
                Some(p) => (false, p.trim()),
                None => (true, line),
            };
            let pattern = clean(pattern);
            if pattern.is_empty() {
                continue;
            }
            let matcher = GlobBuilder::new(&pattern)
                .literal_separator(true)
                .build()?
                .compile_matcher();
            rules.push(Rule { matcher, exclude });
        }
        Ok(DockerIgnore { rules })
    }

    pub fn none() -> Self {
        DockerIgnore { rules: vec![] }
    }

    /// `rel` uses `/` separators, relative to the context root.
    pub fn is_excluded(&self, rel: &str) -> bool {
        let mut excluded = false;
        for rule in &self.rules {
            // A pattern matching a parent folder covers everything inside it.
            let hit = rule.matcher.is_match(rel) || parents(rel).any(|p| rule.matcher.is_match(p));
            if hit {
                excluded = rule.exclude;
            }
        }
        excluded
    }
}

/// Like Go's filepath.Clean, plus Docker's dropping of a leading `/`.
fn clean(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    parts.join("/")
}

fn parents(rel: &str) -> impl Iterator<Item = &str> {
    rel.match_indices('/').map(move |(i, _)| &rel[..i])
}

/// Files of `dir` to send, relative with `/` separators, sorted (so the tar is stable).
pub fn files(dir: &Path, ignore: &DockerIgnore) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel_dir) = stack.pop() {
        let abs = dir.join(&rel_dir);
        let entries =
            std::fs::read_dir(&abs).map_err(|e| Error::io(format!("read {}", abs.display()), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(format!("read {}", abs.display()), e))?;
            let rel = rel_dir.join(entry.file_name());
            let rel_str = rel.to_string_lossy().replace('\\', "/");
            let kind = entry
                .file_type()
                .map_err(|e| Error::io(format!("stat {rel_str}"), e))?;
            // Ignored folders are still descended: a `!` rule may re-include something inside.
            if kind.is_dir() {
                stack.push(rel);
            } else if !ignore.is_excluded(&rel_str) {
                out.push(rel_str);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A build context packed into a tar archive, the Dockerfile not yet added.
pub struct Packed {
    builder: tar::Builder<Vec<u8>>,
    pub files: usize,
}

/// Packs `dir` (minus what its `.dockerignore` excludes) once.
pub fn pack(dir: &Path) -> Result<Packed> {
    let ignore = match std::fs::read_to_string(dir.join(".dockerignore")) {
        Ok(text) => DockerIgnore::parse(&text).map_err(|e| Error::Image {
            image: dir.display().to_string(),
            message: format!(".dockerignore: {e}"),
        })?,
        Err(_) => DockerIgnore::none(),
    };
    let names = files(dir, &ignore)?;
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    for rel in &names {
        builder
            .append_path_with_name(dir.join(rel), rel)
            .map_err(|e| Error::io(format!("add {rel} to the build context"), e))?;
    }
    Ok(Packed {
        builder,
        files: names.len(),
    })
}

impl Packed {
    /// SHA-256 of the packed files and `dockerfile`: what the image is built from.
    pub fn sha256(&self, dockerfile: &str) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(self.builder.get_ref());
        h.update(dockerfile.as_bytes());
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The finished archive, with `dockerfile` added as [`DOCKERFILE`].
    pub fn finish(mut self, dockerfile: &str) -> Result<Vec<u8>> {
        let mut header = tar::Header::new_gnu();
        header.set_size(dockerfile.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        self.builder
            .append_data(&mut header, DOCKERFILE, dockerfile.as_bytes())
            .map_err(|e| Error::io("add the Dockerfile to the build context", e))?;
        self.builder
            .into_inner()
            .map_err(|e| Error::io("finish the build context", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ig(text: &str) -> DockerIgnore {
        DockerIgnore::parse(text).expect("patterns")
    }

    #[test]
    fn docker_semantics() {
        let i = ig("# comment\ntarget\n*.log\n/secrets/*.key\n**/tmp\n!keep.log\n");
        assert!(i.is_excluded("target"));
        assert!(
            i.is_excluded("target/debug/x"),
            "a folder excludes its contents"
        );
        assert!(!i.is_excluded("src/target.rs"));
        assert!(i.is_excluded("a.log"));
        assert!(!i.is_excluded("logs/a.log"), "* stays within one segment");
        assert!(!i.is_excluded("keep.log"), "! re-includes, last match wins");
        assert!(i.is_excluded("secrets/id.key"));
        assert!(i.is_excluded("x/y/tmp/z"), "** crosses segments");
        assert!(!i.is_excluded("README.md"));
    }

    #[test]
    fn order_matters() {
        assert!(ig("!a.txt\n*.txt").is_excluded("a.txt"));
        assert!(!ig("*.txt\n!a.txt").is_excluded("a.txt"));
    }
}
