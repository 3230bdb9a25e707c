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
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Built {
    pub image_id: String,
    /// Every step came from the engine's cache.
    pub cached: bool,
    pub steps: usize,
    pub seconds: f64,
}

pub async fn build(docker: &Docker, req: BuildRequest<'_>, line: &Line) -> Result<Built> {
    let started = Instant::now();
    let options = BuildImageOptionsBuilder::default()
        .dockerfile(super::context::DOCKERFILE)
        .t(req.tag)
        .platform(req.platform)
        .rm(true)
        .forcerm(true)
        .build();
    let mut stream =
        docker.build_image(options, None, Some(bollard::body_full(req.context.into())));
    let mut tail: VecDeque<String> = VecDeque::new();
    let mut step = String::new();
    let (mut steps, mut cached_steps, mut from_steps) = (0usize, 0usize, 0usize);
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
                from_steps += usize::from(l.contains(" : FROM "));
            } else if l.trim() == "---> Using cache" {
                cached_steps += 1;
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
    Ok(Built {
        image_id,
        cached: steps > 0 && cached_steps + from_steps >= steps,
        steps,
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
