//! ELBv2: the load balancer, its target groups and their targets' health.

use aws_sdk_elasticloadbalancingv2::Client;
use serde::Serialize;

use crate::error::Result;

#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub id: String,
    pub port: Option<i32>,
    pub state: String,
    /// AWS's reason code when not healthy, e.g. Target.FailedHealthChecks.
    pub reason: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetGroup {
    pub arn: String,
    pub name: String,
    pub port: Option<i32>,
    pub targets: Vec<Target>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadBalancer {
    pub dns_name: String,
    pub target_groups: Vec<TargetGroup>,
}

/// The named load balancer with every target group's health; None when it does not exist.
pub async fn load_balancer(client: &Client, name: &str) -> Result<Option<LoadBalancer>> {
    let lbs = match client.describe_load_balancers().names(name).send().await {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_load_balancer_not_found_exception()) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(super::error("describe the load balancer", name, e)),
    };
    let Some(lb) = lbs.load_balancers().first() else {
        return Ok(None);
    };
    let arn = lb.load_balancer_arn().unwrap_or_default();
    let groups = client
        .describe_target_groups()
        .load_balancer_arn(arn)
        .send()
        .await
        .map_err(|e| super::error("describe the target groups", name, e))?;
    let health = groups.target_groups().iter().map(|tg| async move {
        let tg_arn = tg.target_group_arn().unwrap_or_default();
        Ok::<_, crate::error::Error>(TargetGroup {
            arn: tg_arn.to_string(),
            name: tg.target_group_name().unwrap_or_default().to_string(),
            port: tg.port(),
            targets: target_health(client, tg_arn).await?,
        })
    });
    let target_groups = futures_util::future::join_all(health)
        .await
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(LoadBalancer {
        dns_name: lb.dns_name().unwrap_or_default().to_string(),
        target_groups,
    }))
}

/// Every registered target of a target group with its health.
pub async fn target_health(client: &Client, target_group_arn: &str) -> Result<Vec<Target>> {
    let h = client
        .describe_target_health()
        .target_group_arn(target_group_arn)
        .send()
        .await
        .map_err(|e| super::error("describe target health", target_group_arn, e))?;
    Ok(h.target_health_descriptions()
        .iter()
        .map(|d| Target {
            id: d
                .target()
                .and_then(|t| t.id())
                .unwrap_or_default()
                .to_string(),
            port: d.target().and_then(|t| t.port()),
            state: d
                .target_health()
                .and_then(|t| t.state())
                .map_or("unknown".into(), |s| s.as_str().to_string()),
            reason: d
                .target_health()
                .and_then(|t| t.reason())
                .map(|r| r.as_str().to_string()),
            description: d
                .target_health()
                .and_then(|t| t.description())
                .map(String::from),
        })
        .collect())
}
