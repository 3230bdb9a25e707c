//! The Docker Engine API (bollard): build contexts, builds, tags, pushes.

pub mod build;
pub mod context;
pub mod ignore;
pub mod pull;
pub mod push;

use std::time::Duration;

use bollard::Docker;

use crate::error::{Error, Result};

/// Connects to the engine (DOCKER_HOST or the default socket) and checks it answers.
pub async fn connect() -> Result<Docker> {
    let hint =
        "start the Docker Engine (e.g. `systemctl start docker`) or point DOCKER_HOST at one";
    let docker = Docker::connect_with_local_defaults().map_err(|e| Error::Preflight {
        what: format!("cannot use the Docker Engine: {e}"),
        hint: hint.into(),
    })?;
    match tokio::time::timeout(Duration::from_secs(5), docker.ping()).await {
        Ok(Ok(_)) => Ok(docker),
        Ok(Err(e)) => Err(Error::Preflight {
            what: format!("the Docker Engine does not answer: {e}"),
            hint: hint.into(),
        }),
        Err(_) => Err(Error::Preflight {
            what: "the Docker Engine did not answer within 5 s".into(),
            hint: hint.into(),
        }),
    }
}
