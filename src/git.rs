//! What was built: the commit, and a fingerprint of uncommitted changes.

use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Revision {
    /// Full commit id, or None outside a git checkout.
    pub commit: Option<String>,
    /// Hash of the uncommitted change (tracked diff and untracked files), when dirty.
    pub dirty: Option<String>,
}

impl Revision {
    /// `1a2b3c4d5e6f`, `1a2b3c4d5e6f-dirty-89ab12cd`, or `nogit-<hash>`.
    pub fn tag(&self) -> String {
        let base = self
            .commit
            .as_deref()
            .map_or("nogit".to_string(), |c| c.chars().take(12).collect());
        match &self.dirty {
            Some(d) => format!("{base}-dirty-{d}"),
            None => base,
        }
    }
}

fn git(root: &Path, args: &[&str]) -> Option<Vec<u8>> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .ok()?;
    out.status.success().then_some(out.stdout)
}

fn git_line(root: &Path, args: &[&str]) -> Option<String> {
    let out = git(root, args)?;
    let s = String::from_utf8_lossy(&out).trim().to_string();
    (!s.is_empty()).then_some(s)
}

/// URL of the `origin` remote, for the image's source label.
pub fn remote(root: &Path) -> Option<String> {
    git_line(root, &["remote", "get-url", "origin"])
}

/// The HEAD commit's time (ISO 8601).
pub fn commit_time(root: &Path) -> Option<String> {
    git_line(root, &["log", "-1", "--format=%cI"])
}

/// The full commit a reference names (a commit id, its prefix, a branch, a tag), if git
/// knows one. `--end-of-options` keeps a reference from being read as an option.
pub fn commit_of(root: &Path, reference: &str) -> Option<String> {
    let spec = format!("{reference}^{{commit}}");
    git_line(
        root,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &spec,
        ],
    )
}

pub fn revision(root: &Path) -> Revision {
    let Some(head) = git(root, &["rev-parse", "HEAD"]) else {
        return Revision {
            commit: None,
            dirty: None,
        };
    };
    let commit = String::from_utf8_lossy(&head).trim().to_string();
    let status = git(root, &["status", "--porcelain", "--untracked-files=all"]).unwrap_or_default();
    if status.is_empty() {
        return Revision {
            commit: Some(commit),
            dirty: None,
        };
    }
    let mut h = Sha256::new();
    h.update(git(root, &["diff", "HEAD", "--binary"]).unwrap_or_default());
    let untracked =
        git(root, &["ls-files", "--others", "--exclude-standard", "-z"]).unwrap_or_default();
    for name in untracked.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        h.update(name);
        h.update(
            std::fs::read(root.join(String::from_utf8_lossy(name).as_ref())).unwrap_or_default(),
        );
    }
    let digest = h.finalize();
    let dirty: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    Revision {
        commit: Some(commit),
        dirty: Some(dirty),
    }
}
