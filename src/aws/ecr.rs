//! ECR: registry credentials for pushes, and a check that the repositories exist.

use aws_sdk_ecr::Client;
use base64::Engine;

use crate::error::{Error, Result};

pub struct Login {
    /// `ACCOUNT.dkr.ecr.REGION.amazonaws.com`
    pub host: String,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("host", &self.host)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

pub async fn login(client: &Client) -> Result<Login> {
    let out = client
        .get_authorization_token()
        .send()
        .await
        .map_err(|e| super::error("get an ECR authorization token", "ECR", e))?;
    let data = out
        .authorization_data()
        .first()
        .ok_or_else(|| Error::Image {
            image: "ECR".into(),
            message: "GetAuthorizationToken returned no authorization data".into(),
        })?;
    let token = data.authorization_token().unwrap_or_default();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| Error::Image {
            image: "ECR".into(),
            message: "the ECR token is not base64 user:password".into(),
        })?;
    let (username, password) = decoded.split_once(':').ok_or_else(|| Error::Image {
        image: "ECR".into(),
        message: "the ECR token is not user:password".into(),
    })?;
    // Expiry is not checked: moto's tokens carry a date in 2015, and the engine rejects a
    // truly expired one with a clear message anyway.
    let host = data
        .proxy_endpoint()
        .unwrap_or_default()
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    Ok(Login {
        host,
        username: username.to_string(),
        password: password.to_string(),
    })
}

/// Names among `names` that have no ECR repository.
pub async fn missing_repositories(client: &Client, names: &[String]) -> Result<Vec<String>> {
    let mut missing = Vec::new();
    for name in names {
        match client
            .describe_repositories()
            .repository_names(name)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_repository_not_found_exception()) =>
            {
                missing.push(name.clone());
            }
            Err(e) => return Err(super::error("describe the ECR repository", name, e)),
        }
    }
    Ok(missing)
}

/// Makes an ECR repository as Terraform makes the services' (scanned on push, encrypted
/// with KMS, mutable tags), for images that live outside any one environment's stack.
pub async fn create_repository(client: &Client, name: &str, project: &str) -> Result<()> {
    use aws_sdk_ecr::types::{
        EncryptionConfiguration, EncryptionType, ImageScanningConfiguration, ImageTagMutability,
        Tag,
    };
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
    client
        .create_repository()
        .repository_name(name)
        .image_tag_mutability(ImageTagMutability::Mutable)
        .image_scanning_configuration(
            ImageScanningConfiguration::builder()
                .scan_on_push(true)
                .build(),
        )
        .encryption_configuration(
            EncryptionConfiguration::builder()
                .encryption_type(EncryptionType::Kms)
                .build()
                .map_err(|e| super::error("describe the repository's encryption", name, e))?,
        )
        .tags(tag("Project", project).map_err(|e| super::error("tag the repository", name, e))?)
        .tags(
            tag("ManagedBy", "learntrac")
                .map_err(|e| super::error("tag the repository", name, e))?,
        )
        .send()
        .await
        .map_err(|e| super::error("create the ECR repository", name, e))?;
    Ok(())
}

/// Digest of `repository:tag` in ECR; None when the repository or tag does not exist.
pub async fn digest_of_tag(client: &Client, repository: &str, tag: &str) -> Result<Option<String>> {
    let id = aws_sdk_ecr::types::ImageIdentifier::builder()
        .image_tag(tag)
        .build();
    match client
        .describe_images()
        .repository_name(repository)
        .image_ids(id)
        .send()
        .await
    {
        Ok(out) => Ok(out
            .image_details()
            .first()
            .and_then(|d| d.image_digest())
            .map(String::from)),
        Err(e)
            if e.as_service_error().is_some_and(|s| {
                s.is_repository_not_found_exception() || s.is_image_not_found_exception()
            }) =>
        {
            Ok(None)
        }
        Err(e) => Err(super::error("describe the ECR image", repository, e)),
    }
}
