//! One image build through the Engine API, streaming its output to a progress line.

use std::collections::VecDeque;
use std::time::Instant;

use bollard::Docker;
use bollard::query_parameters::BuildImageOptionsBuilder;
use futures_util::StreamExt;

use crate::error::{Error, Result};
use crate::ui::progress::Line;

/// Lines of output kept to explain a failure.
const TAIL: usize = 15;

pub struct BuildRequest<'a> {
    pub image: &'a str,
    /// Local name:tag given to the result.
    pub tag: &'a str,
    pub context: Vec<u8>,
    pub platform: &'a str,
    /// Pulled images whose layers may stand in for steps (`docker build --cache-from`).
    pub cache_from: &'a [String],
    /// The stage to stop at (`--target`); empty for the whole Dockerfile.
    pub target: &'a str,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Built {
    pub image_id: String,
    /// Every step came from the engine's cache.
    pub cached: bool,
    pub steps: usize,
    /// The steps that ran rather than came from the cache (`RUN cargo build …`), FROM
    /// steps left out.
    pub rebuilt: Vec<String>,
    pub seconds: f64,
}

pub async fn build(docker: &Docker, req: BuildRequest<'_>, line: &Line) -> Result<Built> {
    let started = Instant::now();
    let mut options = BuildImageOptionsBuilder::default()
        .dockerfile(super::context::DOCKERFILE)
        .t(req.tag)
        .platform(req.platform)
        .target(req.target)
        .rm(true)
        .forcerm(true);
    if !req.cache_from.is_empty() {
        options = options.cachefrom(&req.cache_from.to_vec());
    }
    let options = options.build();
    let mut stream =
        docker.build_image(options, None, Some(bollard::body_full(req.context.into())));
    let mut tail: VecDeque<String> = VecDeque::new();
    let mut step = String::new();
    let (mut steps, mut cached_steps, mut from_steps) = (0usize, 0usize, 0usize);
    // The step being run, and whether the engine took it from its cache.
    let mut running: Option<(String, bool)> = None;
    let mut rebuilt = Vec::new();
    let mut image_id = None;
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| failure(req.image, &step, &tail, &e.to_string()))?;
        if let Some(detail) = info.error_detail.and_then(|d| d.message) {
            return Err(failure(req.image, &step, &tail, &detail));
        }
        if let Some(id) = info.aux.and_then(|a| a.id) {
            image_id = Some(id);
        }
        let Some(text) = info.stream else { continue };
        // The engine colours a step's stderr; what reaches logs and terminals is text.
        for l in text
            .split(['\n', '\r'])
            .map(|l| crate::ui::text::printable(l.trim_end()))
            .filter(|l| !l.trim().is_empty())
        {
            let l = l.as_str();
            if l.starts_with("Step ") {
                step = l.to_string();
                steps += 1;
                // FROM steps never report "Using cache".
                let from = l.contains(" : FROM ");
                from_steps += usize::from(from);
                if let Some((done, false)) = running.take() {
                    rebuilt.push(done);
                }
                let instruction = l.split_once(" : ").map_or(l, |(_, i)| i);
                running = (!from).then(|| (instruction.to_string(), false));
            } else if l.trim() == "---> Using cache" {
                cached_steps += 1;
                if let Some((_, cached)) = running.as_mut() {
                    *cached = true;
                }
            }
            if let Some(id) = l.strip_prefix("Successfully built ") {
                image_id.get_or_insert_with(|| id.trim().to_string());
            }
            line.message(l);
            if tail.len() == TAIL {
                tail.pop_front();
            }
            tail.push_back(l.to_string());
        }
    }
    let image_id = image_id
        .ok_or_else(|| failure(req.image, &step, &tail, "the engine reported no image id"))?;
    if let Some((done, false)) = running {
        rebuilt.push(done);
    }
    Ok(Built {
        image_id,
        cached: steps > 0 && cached_steps + from_steps >= steps,
        steps,
        rebuilt,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn failure(image: &str, step: &str, tail: &VecDeque<String>, message: &str) -> Error {
    let mut m = String::from("build failed");
    if !step.is_empty() {
        m.push_str(&format!(" at {step}"));
    }
    m.push_str(&format!(": {}", message.trim()));
    if !tail.is_empty() {
        m.push_str("\n    last output:");
        for l in tail {
            m.push_str(&format!("\n      {l}"));
        }
    }
    Error::Image {
        image: image.to_string(),
        message: m,
    }
}
