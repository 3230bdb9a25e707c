//! AWS through the official SDK: the standard credential chain, AWS_PROFILE, AWS_REGION,
//! and the environment's `aws.endpoint` (moto in tests) when set.

pub mod acm;
pub mod cloud;
pub mod dynamodb;
pub mod ec2;
pub mod ecr;
pub mod ecs;
pub mod elbv2;
pub mod iam;
pub mod logs;
pub mod quotas;
pub mod s3;
pub mod signed;
pub mod ssm;
pub mod sts;

use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::config::Environment;
use crate::error::Error;

pub async fn sdk_config(env: &Environment) -> SdkConfig {
    let mut loader =
        aws_config::defaults(BehaviorVersion::latest()).region(Region::new(env.aws.region.clone()));
    if let Some(url) = &env.aws.endpoint {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// "failed to <what> for <which>: <cause>"; missing credentials as their own error, with the fix.
pub fn error<E: std::error::Error + 'static>(what: &str, which: &str, e: E) -> Error {
    let cause = aws_smithy_types::error::display::DisplayErrorContext(&e).to_string();
    let lower = cause.to_ascii_lowercase();
    if lower.contains("credential") || lower.contains("no credentials") {
        return Error::Credentials {
            what: format!("cannot {what} for {which}"),
            detail: cause,
        };
    }
    Error::Aws {
        what: what.to_string(),
        which: which.to_string(),
        cause,
    }
}
