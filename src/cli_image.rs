//! `learntrac cli-image`: learntrac as a container image for CI — the binary given (by
//! default this one), the terraform on PATH and the providers the rendered lock file names,
//! copied from a filesystem mirror — built through the Engine API and pushed beside the
//! services' images. A pipeline then runs `learntrac deploy` without compiling the CLI.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::Environment;
use crate::docker;
use crate::docker::build::{BuildRequest, Built};
use crate::docker::context::{self, Content};
use crate::docker::push::{PushRequest, Pushed};
use crate::error::{Error, Result};
use crate::git;
use crate::render;
use crate::ui::progress::Progress;

/// Where the image keeps the provider mirror (its terraformrc points there).
const MIRROR: &str = "/usr/local/share/terraform/plugins";

#[derive(Debug, Serialize)]
pub struct CliImageReport {
    /// Local `name:tag`.
    pub local: String,
    pub image_id: String,
    pub tags: Vec<String>,
    /// `terraform 1.11.4`
    pub terraform: String,
    /// `registry.terraform.io/hashicorp/aws 5.100.0`
    pub providers: Vec<String>,
    pub build: Built,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push: Option<Pushed>,
}

/// The image's repository: one per project, whichever environment pushes it.
pub fn repository_name(env: &Environment) -> String {
    format!("{}-cli", env.project)
}

pub struct Options<'a> {
    /// The learntrac binary the image carries.
    pub binary: &'a Path,
    /// A filesystem mirror holding the lock file's providers (`terraform providers mirror`).
    pub plugin_dir: &'a Path,
    pub push: bool,
}

pub async fn cli_image(
    root: &Path,
    env: &Environment,
    files: &render::Files,
    options: Options<'_>,
    progress: &Progress,
) -> Result<CliImageReport> {
    let fail = |message: String| Error::Image {
        image: "cli".into(),
        message,
    };
    let dockerfile = files
        .get("docker/cli.Dockerfile")
        .ok_or_else(|| fail("no docker/cli.Dockerfile among the rendered templates".into()))?;
    let lock = files
        .get("terraform/.terraform.lock.hcl")
        .ok_or_else(|| fail("no terraform/.terraform.lock.hcl among the rendered files".into()))?;
    check_executable(options.binary, &env.images.platform).map_err(fail)?;
    let terraform = crate::terraform::find().await?;
    let platform = env.images.platform.replace('/', "_");
    let providers = locked_providers(lock);
    let mut entries: Vec<(String, Content)> = Vec::new();
    for (source, version) in &providers {
        entries
            .extend(provider_files(options.plugin_dir, source, version, &platform).map_err(fail)?);
    }
    let docker = docker::connect().await?;
    // Credentials before building: nothing is built for a push that cannot happen.
    let name = repository_name(env);
    let target = if options.push {
        Some(crate::images::registry(env, std::slice::from_ref(&name), true).await?)
    } else {
        None
    };

    let rc = format!(
        "provider_installation {{\n  filesystem_mirror {{\n    path = \"{MIRROR}\"\n  }}\n}}\n"
    );
    entries.push(("terraform".into(), Content::File(terraform.path.clone())));
    entries.push(("terraformrc".into(), Content::Text(rc.into_bytes())));
    entries.push((
        "learntrac".into(),
        Content::File(options.binary.to_path_buf()),
    ));

    let rev = git::revision(root);
    let tags = vec![rev.tag(), format!("v{}", env!("CARGO_PKG_VERSION"))];
    let local = format!("{name}:{}", rev.tag());
    let line = progress.line("cli");
    line.message("packing learntrac, terraform and the providers");
    let dockerfile = dockerfile.clone();
    let tar = tokio::task::spawn_blocking(move || context::gather(&entries)?.finish(&dockerfile))
        .await
        .map_err(|e| fail(e.to_string()))??;
    line.message(&format!("sending {} MB", tar.len() / 1_000_000));
    let built = docker::build::build(
        &docker,
        BuildRequest {
            image: "cli",
            tag: &local,
            context: tar,
            platform: &env.images.platform,
            cache_from: &[],
            target: "",
        },
        &line,
    )
    .await?;
    let mut report = CliImageReport {
        local: local.clone(),
        image_id: built.image_id.clone(),
        tags: tags.clone(),
        terraform: format!("{} {}", terraform.name, terraform.version),
        providers: providers
            .iter()
            .map(|(source, version)| format!("{source} {version}"))
            .collect(),
        build: built,
        repository: None,
        push: None,
    };
    if let Some((host, credentials)) = target {
        let repository = format!("{host}/{name}");
        let pushed = docker::push::push(
            &docker,
            PushRequest {
                image: "cli",
                local: &local,
                repository: &repository,
                tags: &tags,
                credentials,
            },
            &line,
        )
        .await?;
        line.finish(&format!("pushed {repository}@{}", pushed.digest));
        report.repository = Some(repository);
        report.push = Some(pushed);
    } else {
        line.finish(&format!("built {local}"));
    }
    Ok(report)
}

/// The image runs the binary it is given: it must be an executable for the image's
/// platform (a macOS build, or an arm64 one for an amd64 image, would only fail in CI).
fn check_executable(binary: &Path, platform: &str) -> std::result::Result<(), String> {
    use std::io::Read;
    let mut head = [0u8; 20];
    std::fs::File::open(binary)
        .and_then(|mut f| f.read_exact(&mut head))
        .map_err(|e| format!("cannot read {}: {e}", binary.display()))?;
    let machine = u16::from_le_bytes([head[18], head[19]]);
    let expected = match platform {
        "linux/amd64" => 0x3e,
        "linux/arm64" => 0xb7,
        other => {
            return Err(format!(
                "images.platform {other}: the CLI image is built for linux/amd64 or linux/arm64"
            ));
        }
    };
    if &head[..4] != b"\x7fELF" || machine != expected {
        return Err(format!(
            "{} is not a {platform} executable: the image carries the binary it is given. Build it on {platform} (a CI runner) or pass --binary with a {platform} build of learntrac",
            binary.display()
        ));
    }
    Ok(())
}

/// `(source, version)` of every provider in a lock file.
fn locked_providers(lock: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut source = None;
    for l in lock.lines().map(str::trim) {
        if let Some(rest) = l.strip_prefix("provider \"") {
            source = rest.split('"').next().map(String::from);
        } else if let (Some(s), Some(v)) = (&source, l.strip_prefix("version")) {
            let version = v
                .trim_start_matches([' ', '='])
                .trim_matches('"')
                .to_string();
            out.push((s.clone(), version));
            source = None;
        }
    }
    out
}

/// The mirror's files for one provider, named as the image's mirror keeps them: the
/// unpacked layout (`SOURCE/VERSION/PLATFORM/…`) or the packed one (`SOURCE/…_PLATFORM.zip`).
fn provider_files(
    mirror: &Path,
    source: &str,
    version: &str,
    platform: &str,
) -> std::result::Result<Vec<(String, Content)>, String> {
    let unpacked = mirror.join(source).join(version).join(platform);
    if let Ok(entries) = std::fs::read_dir(&unpacked) {
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        if !files.is_empty() {
            return Ok(files
                .into_iter()
                .map(|p| {
                    let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
                    (
                        format!(
                            "plugins/{source}/{version}/{platform}/{}",
                            name.unwrap_or_default()
                        ),
                        Content::File(p),
                    )
                })
                .collect());
        }
    }
    let kind = source.rsplit('/').next().unwrap_or(source);
    let zip = format!("terraform-provider-{kind}_{version}_{platform}.zip");
    let packed = mirror.join(source).join(&zip);
    if packed.is_file() {
        return Ok(vec![(
            format!("plugins/{source}/{zip}"),
            Content::File(packed),
        )]);
    }
    Err(format!(
        "the provider mirror {} has no {source} {version} for {platform}: make one with `terraform providers mirror -platform={platform} {}` in .learntrac/ENV/terraform",
        mirror.display(),
        mirror.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_providers_of_a_lock_file() {
        let lock = "provider \"registry.terraform.io/hashicorp/aws\" {\n  version     = \"5.100.0\"\n  constraints = \"5.100.0\"\n}\nprovider \"registry.terraform.io/hashicorp/random\" {\n  version = \"3.6.0\"\n}\n";
        assert_eq!(
            locked_providers(lock),
            vec![
                (
                    "registry.terraform.io/hashicorp/aws".into(),
                    "5.100.0".into()
                ),
                (
                    "registry.terraform.io/hashicorp/random".into(),
                    "3.6.0".into()
                )
            ]
        );
    }

    #[test]
    fn refuses_a_binary_for_another_platform() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mac = dir.path().join("learntrac");
        // A Mach-O header, as `cargo build` on a Mac makes.
        std::fs::write(
            &mac,
            [
                0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1, 3, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0,
            ],
        )
        .expect("write");
        let e = check_executable(&mac, "linux/amd64").expect_err("not an ELF file");
        assert!(e.contains("is not a linux/amd64 executable"), "{e}");
        let this = std::env::current_exe().expect("this test's binary");
        assert!(check_executable(&this, "linux/amd64").is_ok());
    }
}
