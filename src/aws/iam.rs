//! IAM, for the one role a new account lacks until something makes it: ECS's
//! service-linked role, without which `CreateService` fails ("Unable to assume the service
//! linked role"). Two Query API calls, signed as the SDKs sign (aws-sdk-iam would cost more
//! build time than they are worth).

use aws_config::{Region, SdkConfig};

use super::ec2::{Node, parse};
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
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("Action", action)
        .append_pair("Version", API_VERSION);
    for (k, v) in params {
        form.append_pair(k, v);
    }
    let fail = |cause: String| Error::Aws {
        what: format!("ask IAM ({action})"),
        which: ECS_SERVICE_LINKED_ROLE.into(),
        cause,
    };
    let (status, text) = signed
        .post(
            &[(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )],
            form.finish(),
        )
        .await
        .map_err(fail)?;
    let doc = parse(&text).map_err(|e| fail(format!("unreadable answer ({e})")))?;
    if !status.is_success() {
        let code = doc.text_at("Error/Code");
        return Err(fail(format!(
            "{status}: {code} {}",
            doc.text_at("Error/Message")
        )));
    }
    Ok(doc)
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
