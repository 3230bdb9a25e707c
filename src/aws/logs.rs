//! CloudWatch Logs reads over its JSON API (signed.rs): the events of a service's tasks, and
//! the last lines one task wrote. ECS's awslogs driver writes to `/ecs/<service>` in streams
//! `ecs/app/<task id>` (the task definition's prefix `ecs`, container `app`).

use aws_config::SdkConfig;
use serde::Serialize;
use serde_json::{Value, json};

use super::signed::Signed;
use crate::error::{Error, Result};

pub fn group(ecs_service: &str) -> String {
    format!("/ecs/{ecs_service}")
}

pub fn stream(task_id: &str) -> String {
    format!("ecs/app/{task_id}")
}

/// The task id a stream belongs to.
pub fn task_of(stream: &str) -> &str {
    stream.rsplit('/').next().unwrap_or(stream)
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LogEvent {
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    pub task: String,
    pub message: String,
    #[serde(skip)]
    pub id: String,
}

pub struct Logs {
    signed: Signed,
}

impl Logs {
    pub async fn new(config: &SdkConfig) -> Result<Self> {
        Ok(Logs {
            signed: Signed::new(config, "logs", "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS").await?,
        })
    }

    async fn call(&self, action: &str, body: Value) -> Result<Value> {
        let fail = |cause: String| Error::Aws {
            what: format!("read CloudWatch Logs ({action})"),
            which: self.signed.endpoint.clone(),
            cause,
        };
        let target = format!("Logs_20140328.{action}");
        let (status, doc) = self
            .signed
            .json("1.1", &target, &body)
            .await
            .map_err(fail)?;
        if !status.is_success() {
            let kind = doc["__type"].as_str().unwrap_or_default();
            if kind.ends_with("ResourceNotFoundException") {
                return Ok(Value::Null);
            }
            return Err(fail(format!(
                "{status}: {kind} {}",
                doc["message"].as_str().unwrap_or_default()
            )));
        }
        Ok(doc)
    }

    /// Events of `group` at or after `start_ms` (all pages), oldest first; none when the
    /// group does not exist yet.
    pub async fn events(&self, group: &str, start_ms: i64) -> Result<Vec<LogEvent>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut body =
                json!({"logGroupName": group, "startTime": start_ms, "interleaved": true});
            if let Some(t) = &token {
                body["nextToken"] = json!(t);
            }
            let doc = self.call("FilterLogEvents", body).await?;
            for e in doc["events"].as_array().into_iter().flatten() {
                out.push(LogEvent {
                    timestamp: e["timestamp"].as_i64().unwrap_or(0),
                    task: task_of(e["logStreamName"].as_str().unwrap_or_default()).to_string(),
                    message: e["message"].as_str().unwrap_or_default().to_string(),
                    id: e["eventId"].as_str().unwrap_or_default().to_string(),
                });
            }
            match doc["nextToken"].as_str() {
                Some(t) if Some(t) != token.as_deref() => token = Some(t.to_string()),
                _ => break,
            }
        }
        out.sort_by_key(|e| e.timestamp);
        Ok(out)
    }

    /// The last `n` lines one task wrote (none when its stream does not exist).
    pub async fn tail(&self, group: &str, task_id: &str, n: usize) -> Result<Vec<String>> {
        let doc = self
            .call(
                "GetLogEvents",
                json!({
                    "logGroupName": group,
                    "logStreamName": stream(task_id),
                    "startFromHead": false,
                    "limit": n,
                }),
            )
            .await?;
        let mut lines: Vec<String> = doc["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["message"].as_str().map(str::to_string))
            .collect();
        // Fewer than asked may come back in a page; never more than `n`.
        let skip = lines.len().saturating_sub(n);
        lines.drain(..skip);
        Ok(lines)
    }
}
