//! Service Quotas, for the one quota a rollout can run into: Fargate's On-Demand vCPUs
//! (L-3032A538), which new accounts get small. One JSON call, signed as the SDKs sign.

use aws_config::SdkConfig;
use serde_json::json;

use super::signed::Signed;
use crate::error::{Error, Result};

/// "Fargate On-Demand vCPU resource count".
pub const FARGATE_VCPU: &str = "L-3032A538";

/// The account's Fargate vCPU quota in this region; None when Service Quotas does not
/// know it (a partition or endpoint without it).
pub async fn fargate_vcpu(config: &SdkConfig) -> Result<Option<f64>> {
    let signed = Signed::new(config, "servicequotas", "AWS_ENDPOINT_URL_SERVICE_QUOTAS").await?;
    let fail = |cause: String| Error::Aws {
        what: "read the Fargate vCPU quota".into(),
        which: FARGATE_VCPU.into(),
        cause,
    };
    let (status, doc) = signed
        .json(
            "1.1",
            "ServiceQuotasV20190624.GetServiceQuota",
            &json!({ "ServiceCode": "fargate", "QuotaCode": FARGATE_VCPU }),
        )
        .await
        .map_err(fail)?;
    if !status.is_success() {
        let kind = doc["__type"].as_str().unwrap_or_default();
        if kind.ends_with("NoSuchResourceException") {
            return Ok(None);
        }
        return Err(fail(format!(
            "{status}: {kind} {}",
            doc["message"].as_str().unwrap_or_default()
        )));
    }
    Ok(doc["Quota"]["Value"].as_f64())
}
