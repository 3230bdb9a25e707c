//! IAM, for the one role a new account lacks until something makes it: ECS's
//! service-linked role, without which `CreateService` fails ("Unable to assume the service
//! linked role"). Two Query API calls, signed as the SDKs sign (aws-sdk-iam would cost more
//! build time than they are worth).

use aws_config::{Region, SdkConfig};

use super::ec2::Node;
use super::signed::Signed;
use crate::error::{Error, Result};

pub const ECS_SERVICE_LINKED_ROLE: &str = "AWSServiceRoleForECS";
const API_VERSION: &str = "2010-05-08";

async fn call(config: &SdkConfig, action: &str, params: &[(&str, &str)]) -> Result<Node> {
    // IAM is global: one endpoint, signed for us-east-1.
    let config = config.to_builder().region(Region::new("us-east-1")).build();
    let mut signed = Signed::new(&config, "iam", "AWS_ENDPOINT_URL_IAM").await?;
    if std::env::var_os("AWS_ENDPOINT_URL_IAM").is_none() && config.endpoint_url().is_none() {
        signed.endpoint = "https://iam.amazonaws.com".into();
    }
    let params: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    signed
        .query(action, API_VERSION, &params)
        .await
        .map_err(|cause| Error::Aws {
            what: format!("ask IAM ({action})"),
            which: ECS_SERVICE_LINKED_ROLE.into(),
            cause,
        })
}

/// Whether the account has ECS's service-linked role.
pub async fn ecs_service_linked_role_exists(config: &SdkConfig) -> Result<bool> {
    match call(config, "GetRole", &[("RoleName", ECS_SERVICE_LINKED_ROLE)]).await {
        Ok(_) => Ok(true),
        Err(Error::Aws { cause, .. }) if cause.contains("NoSuchEntity") => Ok(false),
        Err(e) => Err(e),
    }
}

/// Makes ECS's service-linked role (as the console does on first use).
pub async fn create_ecs_service_linked_role(config: &SdkConfig) -> Result<()> {
    call(
        config,
        "CreateServiceLinkedRole",
        &[("AWSServiceName", "ecs.amazonaws.com")],
    )
    .await
    .map(|_| ())
}
