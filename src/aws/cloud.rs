//! The AWS calls a rollout is watched through, behind one trait: the real clients in use,
//! a scripted double in tests for what moto cannot do (failed rollouts, circuit-breaker
//! rollbacks, stopped tasks, events, throttling, unhealthy targets, timeouts).

use futures_util::future::BoxFuture;

use super::ecs::{ServiceState, StoppedTask};
use super::elbv2::Target;
use crate::error::Result;

pub trait Cloud: Send + Sync {
    fn services<'a>(
        &'a self,
        cluster: &'a str,
        names: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<ServiceState>>>;

    fn stopped_tasks<'a>(
        &'a self,
        cluster: &'a str,
        service: &'a str,
    ) -> BoxFuture<'a, Result<Vec<StoppedTask>>>;

    /// Returns the new deployment's id.
    fn force_new_deployment<'a>(
        &'a self,
        cluster: &'a str,
        service: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>>>;

    fn target_health<'a>(&'a self, target_group_arn: &'a str)
    -> BoxFuture<'a, Result<Vec<Target>>>;

    /// The last lines a task of `service` wrote; empty when there are none or they cannot
    /// be read (the rollout's verdict does not depend on them).
    fn log_tail<'a>(&'a self, service: &'a str, task_id: &'a str) -> BoxFuture<'a, Vec<String>>;
}

/// Lines of a stopped task's log shown with a failed rollout.
pub const LOG_TAIL_LINES: usize = 10;

/// The real thing.
pub struct Aws {
    pub ecs: aws_sdk_ecs::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    logs: Option<super::logs::Logs>,
}

impl Aws {
    pub async fn new(config: &aws_config::SdkConfig) -> Self {
        Aws {
            ecs: aws_sdk_ecs::Client::new(config),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(config),
            logs: super::logs::Logs::new(config).await.ok(),
        }
    }
}

impl Cloud for Aws {
    fn services<'a>(
        &'a self,
        cluster: &'a str,
        names: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<ServiceState>>> {
        Box::pin(super::ecs::services(&self.ecs, cluster, names))
    }

    fn stopped_tasks<'a>(
        &'a self,
        cluster: &'a str,
        service: &'a str,
    ) -> BoxFuture<'a, Result<Vec<StoppedTask>>> {
        Box::pin(super::ecs::stopped_tasks(&self.ecs, cluster, service))
    }

    fn force_new_deployment<'a>(
        &'a self,
        cluster: &'a str,
        service: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>>> {
        Box::pin(super::ecs::force_new_deployment(
            &self.ecs, cluster, service,
        ))
    }

    fn target_health<'a>(
        &'a self,
        target_group_arn: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Target>>> {
        Box::pin(super::elbv2::target_health(&self.elb, target_group_arn))
    }

    fn log_tail<'a>(&'a self, service: &'a str, task_id: &'a str) -> BoxFuture<'a, Vec<String>> {
        Box::pin(async move {
            match &self.logs {
                Some(l) => l
                    .tail(&super::logs::group(service), task_id, LOG_TAIL_LINES)
                    .await
                    .unwrap_or_default(),
                None => Vec::new(),
            }
        })
    }
}
