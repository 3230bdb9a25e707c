//! Writes a rendered tree: only changed files are touched (so Terraform and Docker caches
//! stay warm), and files a previous render wrote that are no longer produced are removed.
//! Everything stays inside the output folder: the manifest is read as a list of plain
//! relative names (anything else in it is ignored, never deleted), no write or removal goes
//! through a symbolic link below the folder, and files are replaced by rename, so a link
//! planted where a rendered file goes is replaced, not written through.

use std::collections::BTreeSet;
use std::path::{Component, Path};

use serde::Serialize;

use super::Files;
use crate::error::{Error, Result};

/// Lists what a previous render wrote, so stale files can be removed safely.
const MANIFEST: &str = ".learntrac-rendered";

#[derive(Debug, Default, Serialize)]
pub struct WriteReport {
    pub written: Vec<String>,
    pub unchanged: Vec<String>,
    pub removed: Vec<String>,
}

pub fn write_tree(out: &Path, files: &Files) -> Result<WriteReport> {
    let mut report = WriteReport::default();
    let manifest = out.join(MANIFEST);
    refuse_link(out, Path::new(MANIFEST))?;
    let previous: BTreeSet<String> = std::fs::read_to_string(&manifest)
        .map(|s| {
            s.lines()
                .filter(|l| plain_relative(l))
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    for (rel, content) in files {
        if !plain_relative(rel) {
            return Err(Error::Invalid {
                what: format!("a template would write {rel:?}, outside the output folder"),
                hint: "template file names are relative paths without `..`".into(),
            });
        }
        let path = out.join(rel);
        refuse_link(out, Path::new(rel).parent().unwrap_or(Path::new("")))?;
        let is_file = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file());
        if is_file && std::fs::read(&path).is_ok_and(|old| old == content.as_bytes()) {
            report.unchanged.push(rel.clone());
            continue;
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        }
        replace(&path, content.as_bytes())?;
        report.written.push(rel.clone());
    }
    for stale in previous.iter().filter(|p| !files.contains_key(*p)) {
        let path = out.join(stale);
        if refuse_link(out, Path::new(stale).parent().unwrap_or(Path::new(""))).is_err() {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => report.removed.push(stale.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("remove {}", path.display()), e)),
        }
    }
    let listing: String = files.keys().map(|k| format!("{k}\n")).collect();
    replace(&manifest, listing.as_bytes())?;
    Ok(report)
}

/// A name render itself could have written: relative, no `..`, `.` or empty parts.
fn plain_relative(rel: &str) -> bool {
    !rel.is_empty()
        && !rel.contains('\\')
        && Path::new(rel)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// Fails if `rel` (a folder below `out`) or any folder on the way is a symbolic link.
fn refuse_link(out: &Path, rel: &Path) -> Result<()> {
    let mut path = out.to_path_buf();
    for part in rel.components() {
        path.push(part);
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(Error::Invalid {
                what: format!(
                    "{} is a symbolic link; render writes only inside {}",
                    path.display(),
                    out.display()
                ),
                hint: "remove the link (or render into another folder with --out)".into(),
            });
        }
    }
    Ok(())
}

/// Writes `path` as a new file renamed into place: never through a link that stands there.
fn replace(path: &Path, content: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::fs::write(&tmp, content)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::io(format!("write {}", path.display()), e)
        })
}
