//! SSM Parameter Store: the environment's secrets, as SecureStrings under its prefix.

use aws_sdk_ssm::Client;
use aws_sdk_ssm::types::{ParameterTier, ParameterType};
use serde::Serialize;

use crate::error::Result;

#[derive(Debug, Clone, Serialize)]
pub struct SecretInfo {
    pub name: String,
    pub version: i64,
    /// Seconds since the epoch.
    pub last_modified: Option<i64>,
}

pub async fn put(client: &Client, name: &str, value: &str) -> Result<i64> {
    put_with(client, name, value, None).await
}

/// As `put`, for a value that may outgrow the standard tier's 4 KB (a school's logins):
/// intelligent tiering makes the parameter advanced (8 KB) when it must, and keeps it so.
pub async fn put_growing(client: &Client, name: &str, value: &str) -> Result<i64> {
    put_with(client, name, value, Some(ParameterTier::IntelligentTiering)).await
}

async fn put_with(
    client: &Client,
    name: &str,
    value: &str,
    tier: Option<ParameterTier>,
) -> Result<i64> {
    let out = client
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(ParameterType::SecureString)
        .set_tier(tier)
        .overwrite(true)
        .send()
        .await
        .map_err(|e| super::error("store the SSM parameter", name, e))?;
    Ok(out.version())
}

/// The parameter's metadata and, decrypted, its value; None when it does not exist.
pub async fn get(client: &Client, name: &str) -> Result<Option<(SecretInfo, String)>> {
    match client
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
    {
        Ok(out) => Ok(out.parameter().map(|p| {
            (
                SecretInfo {
                    name: p.name().unwrap_or(name).to_string(),
                    version: p.version(),
                    last_modified: p.last_modified_date().map(|d| d.secs()),
                },
                p.value().unwrap_or_default().to_string(),
            )
        })),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_parameter_not_found()) =>
        {
            Ok(None)
        }
        Err(e) => Err(super::error("read the SSM parameter", name, e)),
    }
}

/// Names, versions and dates under `prefix`; never values.
pub async fn list(client: &Client, prefix: &str) -> Result<Vec<SecretInfo>> {
    let mut out = Vec::new();
    let mut pages = client.describe_parameters().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| super::error("list SSM parameters", prefix, e))?;
        for p in page.parameters() {
            let name = p.name().unwrap_or_default();
            if name.starts_with(&format!("{prefix}/")) {
                out.push(SecretInfo {
                    name: name.to_string(),
                    version: p.version(),
                    last_modified: p.last_modified_date().map(|d| d.secs()),
                });
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// True when it existed.
pub async fn delete(client: &Client, name: &str) -> Result<bool> {
    match client.delete_parameter().name(name).send().await {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_parameter_not_found()) =>
        {
            Ok(false)
        }
        Err(e) => Err(super::error("delete the SSM parameter", name, e)),
    }
}
