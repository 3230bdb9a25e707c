//! Pushing an image's tags through the engine, with retries, recording the digest.

use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::query_parameters::{PushImageOptionsBuilder, TagImageOptionsBuilder};
use futures_util::StreamExt;

use crate::error::{Error, Result};
use crate::ui::progress::Line;

const ATTEMPTS: u32 = 4;

pub struct PushRequest<'a> {
    pub image: &'a str,
    /// Local `name:tag` that was built.
    pub local: &'a str,
    /// `registry/name` pushed to.
    pub repository: &'a str,
    pub tags: &'a [String],
    pub credentials: Option<DockerCredentials>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Pushed {
    pub digest: String,
    pub size: Option<u64>,
    /// The registry already had exactly this image under every tag.
    pub skipped: bool,
    pub attempts: u32,
    pub seconds: f64,
}

pub async fn push(docker: &Docker, req: PushRequest<'_>, line: &Line) -> Result<Pushed> {
    let started = Instant::now();
    let fail = |message: String| Error::Image {
        image: req.image.to_string(),
        message,
    };
    for tag in req.tags {
        let options = TagImageOptionsBuilder::default()
            .repo(req.repository)
            .tag(tag)
            .build();
        docker
            .tag_image(req.local, Some(options))
            .await
            .map_err(|e| {
                fail(format!(
                    "cannot tag {} as {}:{tag}: {e}",
                    req.local, req.repository
                ))
            })?;
    }
    if let Some(digest) = already_there(docker, &req).await {
        line.message(&format!("registry already has {digest}; nothing to push"));
        return Ok(Pushed {
            digest,
            size: None,
            skipped: true,
            attempts: 0,
            seconds: started.elapsed().as_secs_f64(),
        });
    }
    let mut digest = None;
    let mut size = None;
    let mut attempts = 0;
    for tag in req.tags {
        let mut attempt = 0;
        loop {
            attempt += 1;
            attempts += 1;
            match push_tag(docker, &req, tag, line).await {
                Ok((d, s)) => {
                    digest = Some(d);
                    size = s;
                    break;
                }
                Err(e) if attempt < ATTEMPTS && transient(&e) => {
                    let wait = Duration::from_millis(500 * 2u64.pow(attempt - 1));
                    line.message(&format!(
                        "push of :{tag} failed ({e}); retrying in {wait:?}"
                    ));
                    tokio::time::sleep(wait).await;
                }
                Err(e) => {
                    return Err(fail(format!(
                        "push of {}:{tag} failed: {e}",
                        req.repository
                    )));
                }
            }
        }
    }
    let digest = digest.ok_or_else(|| fail("the registry reported no digest".into()))?;
    Ok(Pushed {
        digest,
        size,
        skipped: false,
        attempts,
        seconds: started.elapsed().as_secs_f64(),
    })
}

async fn push_tag(
    docker: &Docker,
    req: &PushRequest<'_>,
    tag: &str,
    line: &Line,
) -> std::result::Result<(String, Option<u64>), String> {
    let options = PushImageOptionsBuilder::default().tag(tag).build();
    let mut stream = docker.push_image(req.repository, Some(options), req.credentials.clone());
    let mut result = None;
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| e.to_string())?;
        if let Some(e) = info.error_detail.and_then(|d| d.message) {
            return Err(e);
        }
        let Some(status) = info.status else { continue };
        // "<tag>: digest: sha256:… size: 1234"
        if let Some(rest) = status.split("digest: ").nth(1) {
            let mut parts = rest.split_whitespace();
            let digest = parts.next().unwrap_or_default().to_string();
            let size = parts.nth(1).and_then(|s| s.parse().ok());
            result = Some((digest, size));
        }
        match info
            .progress_detail
            .and_then(|p| Some((p.current?, p.total?)))
        {
            Some((cur, total)) if total > 0 => line.message(&format!(
                ":{tag} {status} {}/{} kB",
                cur / 1024,
                total / 1024
            )),
            _ => line.message(&format!(":{tag} {status}")),
        }
    }
    result.ok_or_else(|| "the engine finished without a digest".to_string())
}

/// The digest, when every tag in the registry already points at the image built here.
async fn already_there(docker: &Docker, req: &PushRequest<'_>) -> Option<String> {
    let local = docker.inspect_image(req.local).await.ok()?;
    let prefix = format!("{}@", req.repository);
    let known: Vec<String> = local
        .repo_digests
        .unwrap_or_default()
        .into_iter()
        .filter_map(|d| d.strip_prefix(&prefix).map(String::from))
        .collect();
    // One registry round trip per tag, all at once.
    let names: Vec<String> = req
        .tags
        .iter()
        .map(|tag| format!("{}:{tag}", req.repository))
        .collect();
    let remotes = futures_util::future::join_all(
        names
            .iter()
            .map(|name| docker.inspect_registry_image(name, req.credentials.clone())),
    )
    .await;
    let mut digest = None;
    for remote in remotes {
        let d = remote.ok()?.descriptor.digest?;
        if !known.contains(&d) {
            return None;
        }
        digest = Some(d);
    }
    digest
}

/// Failures worth another try: the network or an overloaded registry.
fn transient(e: &str) -> bool {
    let e = e.to_ascii_lowercase();
    [
        "connection",
        "timeout",
        "timed out",
        "eof",
        "reset",
        "502",
        "503",
        "504",
        "toomanyrequests",
        "temporarily",
    ]
    .iter()
    .any(|w| e.contains(w))
}
