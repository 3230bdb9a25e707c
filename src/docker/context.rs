//! Build contexts: the folder as the tar stream Docker's CLI sends for `docker build -f
//! <outside> <dir>` — the same walk (lexical, depth first; an excluded folder is entered only
//! when a `!` pattern starts with its path), the same entries (folders with their modes,
//! symlinks, hard links as links to the first name seen, FIFOs and devices as headers;
//! sockets skipped), owners normalised to 0/0, times to the second, and the Dockerfile added
//! the way the CLI adds one from outside the context: under its own name, listed in the
//! context's `.dockerignore` so the engine keeps it (and the `.dockerignore`) out of `COPY`.
//! Ported from docker/cli `ValidateContextDirectory`/`AddDockerfileToBuildContext` and
//! moby's `archive.TarWithOptions`; tests/dockerignore_parity.rs compares the two.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use super::ignore::{self, MatchInfo, PatternMatcher};
use crate::error::{Error, Result};

/// Where the rendered Dockerfile goes inside the context.
pub const DOCKERFILE: &str = ".learntrac.Dockerfile";
const IGNORE_FILE: &[u8] = b".dockerignore";

/// A build context packed into a tar archive, the Dockerfile not yet added.
pub struct Packed {
    builder: tar::Builder<Vec<u8>>,
    /// Entries other than folders.
    pub files: usize,
    /// Sockets, which Docker leaves out too.
    pub skipped: Vec<String>,
    has_ignore_file: bool,
}

/// Packs `dir` (minus what its `.dockerignore` excludes) once. `dockerfile_ignore`, the
/// Dockerfile's own `<name>.dockerignore`, is read in place of the context's, as Docker does.
pub fn pack(dir: &Path, dockerfile_ignore: Option<&str>) -> Result<Packed> {
    let root = dir.canonicalize().map_err(|e| Error::Image {
        image: dir.display().to_string(),
        message: format!("the build context {}: {e}", dir.display()),
    })?;
    let bad = |message: String| Error::Image {
        image: dir.display().to_string(),
        message,
    };
    let ignore_text = match dockerfile_ignore.map(|t| t.as_bytes().to_vec()) {
        Some(own) => Some(own),
        None => match std::fs::read(root.join(".dockerignore")) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(Error::io(
                    format!("read {}/.dockerignore", dir.display()),
                    e,
                ));
            }
        },
    };
    let mut excludes = ignore::read_all(ignore_text.as_deref().unwrap_or_default());
    PatternMatcher::new(&excludes).map_err(|e| bad(format!(".dockerignore: {e}")))?;
    // The CLI always sends the .dockerignore itself (TrimBuildFilesFromExcludes).
    if PatternMatcher::new(&excludes)
        .map(|m| m.matches_or_parent_matches(IGNORE_FILE))
        .unwrap_or(false)
    {
        excludes.push(b"!.dockerignore".to_vec());
    }
    let matcher = PatternMatcher::new(&excludes).map_err(|e| bad(format!(".dockerignore: {e}")))?;
    let mut walk = Walk {
        root: &root,
        matcher: &matcher,
        ignore_text: ignore_text.as_deref(),
        builder: tar::Builder::new(Vec::new()),
        parent_info: HashMap::new(),
        seen_inodes: HashMap::new(),
        files: 0,
        skipped: Vec::new(),
        has_ignore_file: false,
    };
    walk.dir(b"")?;
    Ok(Packed {
        builder: walk.builder,
        files: walk.files,
        skipped: walk.skipped,
        has_ignore_file: walk.has_ignore_file,
    })
}

struct Walk<'a> {
    root: &'a Path,
    matcher: &'a PatternMatcher,
    ignore_text: Option<&'a [u8]>,
    builder: tar::Builder<Vec<u8>>,
    parent_info: HashMap<Vec<u8>, MatchInfo>,
    seen_inodes: HashMap<u64, Vec<u8>>,
    files: usize,
    skipped: Vec<String>,
    has_ignore_file: bool,
}

impl Walk<'_> {
    /// Visits the entries of folder `rel` ("" for the root) in byte order of their names.
    fn dir(&mut self, rel: &[u8]) -> Result<()> {
        let abs = self.abs(rel);
        let mut names: Vec<Vec<u8>> = std::fs::read_dir(&abs)
            .map_err(|e| Error::io(format!("read {}", abs.display()), e))?
            .map(|e| e.map(|e| e.file_name().as_bytes().to_vec()))
            .collect::<std::io::Result<_>>()
            .map_err(|e| Error::io(format!("read {}", abs.display()), e))?;
        names.sort();
        for name in names {
            let child = if rel.is_empty() {
                name
            } else {
                [rel, b"/", &name].concat()
            };
            self.entry(&child)?;
        }
        Ok(())
    }

    fn entry(&mut self, rel: &[u8]) -> Result<()> {
        let abs = self.abs(rel);
        let meta = std::fs::symlink_metadata(&abs)
            .map_err(|e| Error::io(format!("stat {}", abs.display()), e))?;
        let is_dir = meta.is_dir();
        let parent = rel
            .iter()
            .rposition(|b| *b == b'/')
            .and_then(|i| self.parent_info.get(&rel[..i]));
        let (skip, info) = self.matcher.matches_using_parent(rel, parent);
        if is_dir {
            self.parent_info.insert(rel.to_vec(), info);
        }
        if rel == DOCKERFILE.as_bytes() {
            // Ours takes its place, as the CLI's replaces a same-named entry.
            return Ok(());
        }
        if skip {
            // An excluded folder is entered (but not sent) only if a `!` pattern starts
            // with its path; otherwise nothing under it can come back.
            let prefix = [rel, b"/"].concat();
            let reentered = is_dir
                && self.matcher.exclusions()
                && self
                    .matcher
                    .patterns()
                    .iter()
                    .any(|p| p.exclusion() && [p.text(), b"/"].concat().starts_with(&prefix));
            if reentered {
                self.dir(rel)?;
            }
            return Ok(());
        }
        self.add(rel, &abs, &meta)?;
        if is_dir {
            self.dir(rel)?;
        }
        Ok(())
    }

    fn abs(&self, rel: &[u8]) -> std::path::PathBuf {
        self.root.join(OsStr::from_bytes(rel))
    }

    /// moby's `addTarFile`, with `ChownOpts` 0:0.
    fn add(&mut self, rel: &[u8], abs: &Path, meta: &Metadata) -> Result<()> {
        let shown = String::from_utf8_lossy(rel).into_owned();
        let kind = meta.file_type();
        if kind.is_socket() {
            self.skipped.push(shown);
            return Ok(());
        }
        let path = Path::new(OsStr::from_bytes(rel));
        let mut h = tar::Header::new_gnu();
        h.set_mode(meta.mode() & 0o7777);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
        h.set_size(0);
        let fail = |e| Error::io(format!("add {shown} to the build context"), e);
        if !kind.is_dir() && meta.nlink() > 1 {
            if let Some(first) = self.seen_inodes.get(&meta.ino()) {
                h.set_entry_type(tar::EntryType::Link);
                self.files += 1;
                return self
                    .builder
                    .append_link(&mut h, path, OsStr::from_bytes(first))
                    .map_err(fail);
            }
            self.seen_inodes.insert(meta.ino(), rel.to_vec());
        }
        if kind.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            return self
                .builder
                .append_data(&mut h, path, std::io::empty())
                .map_err(fail);
        }
        self.files += 1;
        if kind.is_symlink() {
            let target = std::fs::read_link(abs).map_err(fail)?;
            h.set_entry_type(tar::EntryType::Symlink);
            return self.builder.append_link(&mut h, path, target).map_err(fail);
        }
        if kind.is_fifo() || kind.is_char_device() || kind.is_block_device() {
            h.set_entry_type(if kind.is_fifo() {
                tar::EntryType::Fifo
            } else if kind.is_char_device() {
                tar::EntryType::Char
            } else {
                tar::EntryType::Block
            });
            let rdev = meta.rdev();
            // Linux's dev_t encoding (glibc's gnu_dev_major/minor).
            let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
            let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
            if !kind.is_fifo() {
                h.set_device_major(major as u32).map_err(fail)?;
                h.set_device_minor(minor as u32).map_err(fail)?;
            }
            return self
                .builder
                .append_data(&mut h, path, std::io::empty())
                .map_err(fail);
        }
        if rel == IGNORE_FILE {
            // The CLI lists its Dockerfile in the .dockerignore it sends.
            self.has_ignore_file = true;
            let mut text = self.ignore_text.unwrap_or_default().to_vec();
            text.extend_from_slice(format!("\n{DOCKERFILE}\n").as_bytes());
            h.set_size(text.len() as u64);
            return self
                .builder
                .append_data(&mut h, path, text.as_slice())
                .map_err(fail);
        }
        let file = std::fs::File::open(abs).map_err(|e| {
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                Error::Image {
                    image: shown.clone(),
                    message: format!(
                        "no permission to read {} (docker build refuses it too): make it \
                         readable or list it in .dockerignore",
                        abs.display()
                    ),
                }
            } else {
                fail(e)
            }
        })?;
        h.set_size(meta.len());
        self.builder.append_data(&mut h, path, file).map_err(fail)
    }
}

/// What one entry of a gathered context holds.
pub enum Content {
    /// A file, with its mode.
    File(std::path::PathBuf),
    /// Bytes, mode 0644.
    Text(Vec<u8>),
}

/// A context of entries gathered from anywhere: `(name in the context, content)`, owned by
/// 0:0, in the order given (the engine makes their folders).
pub fn gather(entries: &[(String, Content)]) -> Result<Packed> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, content) in entries {
        let fail = |e| Error::io(format!("add {name} to the build context"), e);
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        match content {
            Content::File(path) => {
                let file = std::fs::File::open(path)
                    .map_err(|e| Error::io(format!("read {}", path.display()), e))?;
                let meta = file.metadata().map_err(fail)?;
                h.set_mode(meta.mode() & 0o7777);
                h.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
                h.set_size(meta.len());
                builder.append_data(&mut h, name, file).map_err(fail)?;
            }
            Content::Text(bytes) => {
                h.set_mode(0o644);
                h.set_mtime(0);
                h.set_size(bytes.len() as u64);
                builder
                    .append_data(&mut h, name, bytes.as_slice())
                    .map_err(fail)?;
            }
        }
    }
    Ok(Packed {
        builder,
        files: entries.len(),
        skipped: Vec::new(),
        has_ignore_file: false,
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

    /// The finished archive, with `dockerfile` added as [`DOCKERFILE`] (and a `.dockerignore`
    /// naming it, when the context has none: the engine then leaves both out of `COPY`).
    pub fn finish(mut self, dockerfile: &str) -> Result<Vec<u8>> {
        let mut add = |name: &str, data: &[u8]| {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o600);
            header.set_uid(0);
            header.set_gid(0);
            // A fixed time keeps the archive of an unchanged tree byte-identical.
            header.set_mtime(0);
            self.builder
                .append_data(&mut header, name, data)
                .map_err(|e| Error::io(format!("add {name} to the build context"), e))
        };
        add(DOCKERFILE, dockerfile.as_bytes())?;
        if !self.has_ignore_file {
            add(
                ".dockerignore",
                format!(".dockerignore\n{DOCKERFILE}\n").as_bytes(),
            )?;
        }
        self.builder
            .into_inner()
            .map_err(|e| Error::io("finish the build context", e))
    }
}
