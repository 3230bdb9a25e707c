//! Pulling an image through the engine, for build cache: a registry that has nothing is an
//! answer, not a failure.

use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::query_parameters::CreateImageOptionsBuilder;
use futures_util::StreamExt;

use crate::ui::progress::Line;

/// What became of one pull.
pub enum Pulled {
    Yes,
    /// The registry has no such repository or tag.
    Absent,
    /// Anything else (network, credentials): the reason, for a warning.
    Failed(String),
}

/// Pulls `repository:tag` into the engine.
pub async fn pull(
    docker: &Docker,
    repository: &str,
    tag: &str,
    credentials: Option<DockerCredentials>,
    line: &Line,
) -> Pulled {
    let options = CreateImageOptionsBuilder::default()
        .from_image(repository)
        .tag(tag)
        .build();
    let mut stream = docker.create_image(Some(options), None, credentials);
    while let Some(item) = stream.next().await {
        let message = match item {
            Ok(info) => match info.error_detail.and_then(|d| d.message) {
                Some(e) => e,
                None => {
                    if let Some(status) = info.status {
                        line.message(&format!("pulling {tag} for build cache: {status}"));
                    }
                    continue;
                }
            },
            Err(e) => e.to_string(),
        };
        let lower = message.to_ascii_lowercase();
        return if [
            "not found",
            "manifest unknown",
            "name unknown",
            "does not exist",
        ]
        .iter()
        .any(|w| lower.contains(w))
        {
            Pulled::Absent
        } else {
            Pulled::Failed(message)
        };
    }
    Pulled::Yes
}
