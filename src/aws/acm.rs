//! ACM, for the load balancer's certificate: does it exist where the stack is, is it
//! issued, and does it name the host people use? One JSON call, signed as the SDKs sign.

use aws_config::SdkConfig;
use serde_json::json;

use super::signed::Signed;
use crate::error::{Error, Result};

/// What ACM says of a certificate; None when it has no such certificate (another region
/// or account, or deleted).
pub struct Certificate {
    /// ISSUED, PENDING_VALIDATION, EXPIRED, …
    pub status: String,
    /// The domain name and every subject alternative name.
    pub names: Vec<String>,
}

pub async fn describe(config: &SdkConfig, arn: &str) -> Result<Option<Certificate>> {
    let signed = Signed::new(config, "acm", "AWS_ENDPOINT_URL_ACM").await?;
    let fail = |cause: String| Error::Aws {
        what: "describe the load balancer's certificate".into(),
        which: arn.to_string(),
        cause,
    };
    let (status, doc) = signed
        .json(
            "1.1",
            "CertificateManager.DescribeCertificate",
            &json!({ "CertificateArn": arn }),
        )
        .await
        .map_err(fail)?;
    if !status.is_success() {
        let kind = doc["__type"].as_str().unwrap_or_default();
        if kind.ends_with("ResourceNotFoundException") {
            return Ok(None);
        }
        return Err(fail(format!(
            "{status}: {kind} {}",
            doc["message"].as_str().unwrap_or_default()
        )));
    }
    let c = &doc["Certificate"];
    let mut names: Vec<String> = c["SubjectAlternativeNames"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str().map(String::from))
        .collect();
    if let Some(d) = c["DomainName"].as_str()
        && !names.iter().any(|n| n == d)
    {
        names.push(d.to_string());
    }
    Ok(Some(Certificate {
        status: c["Status"].as_str().unwrap_or_default().to_string(),
        names,
    }))
}

/// Whether a certificate name covers `host` (a wildcard covers one label).
pub fn covers(name: &str, host: &str) -> bool {
    let (name, host) = (name.to_ascii_lowercase(), host.to_ascii_lowercase());
    match name.strip_prefix("*.") {
        Some(rest) => host
            .split_once('.')
            .is_some_and(|(label, parent)| !label.is_empty() && parent == rest),
        None => name == host,
    }
}

#[cfg(test)]
mod tests {
    use super::covers;

    #[test]
    fn wildcards_cover_one_label() {
        assert!(covers("learn.school.edu", "LEARN.school.edu"));
        assert!(covers("*.school.edu", "learn.school.edu"));
        assert!(!covers("*.school.edu", "a.learn.school.edu"));
        assert!(!covers("*.school.edu", "school.edu"));
        assert!(!covers("school.edu", "learn.school.edu"));
    }
}
