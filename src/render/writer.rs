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
        let merged;
        let content = if rel.ends_with(".terraform.lock.hcl") && is_file {
            merged =
                keep_added_hashes(&std::fs::read_to_string(&path).unwrap_or_default(), content);
            &merged
        } else {
            content
        };
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

/// The rendered lock file with the `h1:` hashes `terraform init` added to the one on disk
/// for the same provider version kept (our lock file carries linux_amd64's `h1:`; init on
/// another platform adds that platform's). Without them every render on a Mac dropped what
/// init had just added, and the file changed on every run. Lines are kept sorted as
/// terraform writes them, so a second render and a second init both leave the file alone.
fn keep_added_hashes(existing: &str, rendered: &str) -> String {
    // provider source -> (version, its h1: hash lines) on disk.
    let mut added: std::collections::BTreeMap<String, (String, Vec<String>)> =
        std::collections::BTreeMap::new();
    let mut provider = None;
    for line in existing.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("provider \"") {
            provider = rest.split('"').next().map(String::from);
        } else if let Some(p) = &provider {
            let entry = added.entry(p.clone()).or_default();
            if let Some(v) = t.strip_prefix("version") {
                entry.0 = v
                    .trim_start_matches([' ', '='])
                    .trim_matches('"')
                    .to_string();
            } else if t.starts_with("\"h1:") {
                entry.1.push(t.trim_end_matches(',').to_string());
            }
        }
    }
    let mut out = String::new();
    let mut provider: Option<String> = None;
    let mut version = String::new();
    let mut hashes: Vec<String> = Vec::new();
    let mut indent = String::new();
    let mut in_hashes = false;
    for line in rendered.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("provider \"") {
            provider = rest.split('"').next().map(String::from);
        } else if let Some(v) = t.strip_prefix("version") {
            version = v
                .trim_start_matches([' ', '='])
                .trim_matches('"')
                .to_string();
        }
        if in_hashes {
            if t == "]" {
                if let Some((v, extra)) = provider.as_ref().and_then(|p| added.get(p))
                    && *v == version
                {
                    hashes.extend(extra.iter().cloned());
                }
                hashes.sort();
                hashes.dedup();
                for h in hashes.drain(..) {
                    out.push_str(&format!("{indent}{h},\n"));
                }
                in_hashes = false;
            } else {
                indent = line[..line.len() - line.trim_start().len()].to_string();
                hashes.push(t.trim_end_matches(',').to_string());
                continue;
            }
        } else if t == "hashes = [" {
            in_hashes = true;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
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

#[cfg(test)]
mod tests {
    use super::keep_added_hashes;

    const OURS: &str = "# ours\nprovider \"registry.terraform.io/hashicorp/aws\" {\n  version     = \"5.100.0\"\n  constraints = \"5.100.0\"\n  hashes = [\n    \"h1:linux\",\n    \"zh:aaa\",\n    \"zh:bbb\",\n  ]\n}\n";

    #[test]
    fn keeps_the_hashes_init_added_and_nothing_else() {
        // What terraform init on a Mac leaves: its own header, darwin's h1: added.
        let after_init = "# This file is maintained automatically by \"terraform init\".\nprovider \"registry.terraform.io/hashicorp/aws\" {\n  version     = \"5.100.0\"\n  constraints = \"5.100.0\"\n  hashes = [\n    \"h1:darwin\",\n    \"h1:linux\",\n    \"zh:aaa\",\n    \"zh:bbb\",\n  ]\n}\n";
        let merged = keep_added_hashes(after_init, OURS);
        assert!(merged.starts_with("# ours\n"), "{merged}");
        assert!(
            merged.contains("    \"h1:darwin\",\n    \"h1:linux\",\n    \"zh:aaa\",\n"),
            "{merged}"
        );
        // Stable: merging again changes nothing.
        assert_eq!(keep_added_hashes(&merged, OURS), merged);
        // Nothing on disk, or another version there: ours as rendered.
        assert_eq!(keep_added_hashes("", OURS), OURS);
        let older = after_init.replace("5.100.0", "5.99.0");
        assert_eq!(keep_added_hashes(&older, OURS), OURS);
    }
}
