//! Writes a rendered tree: only changed files are touched (so Terraform and Docker caches
//! stay warm), and files a previous render wrote that are no longer produced are removed.

use std::collections::BTreeSet;
use std::path::Path;

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
    let previous: BTreeSet<String> = std::fs::read_to_string(&manifest)
        .map(|s| s.lines().map(String::from).collect())
        .unwrap_or_default();
    for (rel, content) in files {
        let path = out.join(rel);
        if std::fs::read(&path).is_ok_and(|old| old == content.as_bytes()) {
            report.unchanged.push(rel.clone());
            continue;
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        }
        std::fs::write(&path, content)
            .map_err(|e| Error::io(format!("write {}", path.display()), e))?;
        report.written.push(rel.clone());
    }
    for stale in previous.iter().filter(|p| !files.contains_key(*p)) {
        let path = out.join(stale);
        match std::fs::remove_file(&path) {
            Ok(()) => report.removed.push(stale.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("remove {}", path.display()), e)),
        }
    }
    let listing: String = files.keys().map(|k| format!("{k}\n")).collect();
    std::fs::write(&manifest, listing)
        .map_err(|e| Error::io(format!("write {}", manifest.display()), e))?;
    Ok(report)
}
