//! Where the environment's images are: tags and digests, in ECR or a `registry:` override.

use std::time::Duration;

use crate::config::Environment;

/// The digest of `repository:tag` where the environment's images go: ECR, or the
/// `registry:` override's HTTP API (anonymous; None when it wants credentials).
pub async fn digest_of_tag(
    env: &Environment,
    ecr: &aws_sdk_ecr::Client,
    http: &reqwest::Client,
    repository: &str,
    tag: &str,
) -> Option<String> {
    match &env.registry {
        None => crate::aws::ecr::digest_of_tag(ecr, repository, tag)
            .await
            .ok()
            .flatten(),
        Some(host) => {
            let scheme = if host.starts_with("127.") || host.starts_with("localhost") {
                "http"
            } else {
                "https"
            };
            let url = format!("{scheme}://{host}/v2/{repository}/manifests/{}", tag);
            let response = http
                .head(url)
                .header(
                    "Accept",
                    "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json",
                )
                .timeout(Duration::from_secs(5))
                .send()
                .await
                .ok()?;
            if !response.status().is_success() {
                return None;
            }
            response
                .headers()
                .get("docker-content-digest")?
                .to_str()
                .ok()
                .map(String::from)
        }
    }
}
