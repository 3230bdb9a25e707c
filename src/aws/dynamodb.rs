//! DynamoDB, for one question: does an environment's Terraform lock table exist
//! (`terraform.s3.lock_table`)? One JSON call, signed as the SDKs sign.

use aws_config::{Region, SdkConfig};
use serde_json::json;

use super::signed::Signed;
use crate::error::{Error, Result};

/// Whether table `name` exists in `region`.
pub async fn table_exists(config: &SdkConfig, region: &str, name: &str) -> Result<bool> {
    let config = config
        .to_builder()
        .region(Region::new(region.to_string()))
        .build();
    let signed = Signed::new(&config, "dynamodb", "AWS_ENDPOINT_URL_DYNAMODB").await?;
    let (status, doc) = signed
        .json(
            "1.0",
            "DynamoDB_20120810.DescribeTable",
            &json!({ "TableName": name }),
        )
        .await
        .map_err(|cause| Error::Aws {
            what: "describe the Terraform lock table".into(),
            which: name.to_string(),
            cause,
        })?;
    if status.is_success() {
        return Ok(true);
    }
    let kind = doc["__type"].as_str().unwrap_or_default();
    if kind.ends_with("ResourceNotFoundException") {
        return Ok(false);
    }
    let message = doc["message"]
        .as_str()
        .or_else(|| doc["Message"].as_str())
        .unwrap_or_default();
    let cause = format!("{status}: {kind} {message}");
    if kind.contains("UnrecognizedClient") || kind.contains("InvalidSignature") {
        return Err(Error::Credentials {
            what: format!("cannot describe the Terraform lock table {name}"),
            detail: cause,
        });
    }
    Err(Error::Aws {
        what: "describe the Terraform lock table".into(),
        which: name.to_string(),
        cause,
    })
}
