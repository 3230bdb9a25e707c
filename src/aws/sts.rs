//! STS: who the credentials belong to.

use crate::error::Result;

pub struct Identity {
    pub account: String,
    pub arn: String,
}

pub async fn identity(config: &aws_config::SdkConfig) -> Result<Identity> {
    let out = aws_sdk_sts::Client::new(config)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| super::error("read the caller identity", "STS", e))?;
    Ok(Identity {
        account: out.account().unwrap_or_default().to_string(),
        arn: out.arn().unwrap_or_default().to_string(),
    })
}
