//! `learntrac logs ENV [SERVICE]`: CloudWatch Logs of the services' tasks, merged by time,
//! each line with its service and task; `-f` polls for what comes next.

use std::collections::HashSet;
use std::time::Duration;

use serde::Serialize;

use crate::Ctx;
use crate::aws::logs::{self, LogEvent, Logs};
use crate::cli::{LogsArgs, OutputFormat};
use crate::config::{Environment, ServiceName};
use crate::error::{Error, Result, exit};

/// How often `-f` asks for new lines.
const FOLLOW_EVERY: Duration = Duration::from_secs(2);

#[derive(Debug, Serialize)]
struct Line {
    time: String,
    service: ServiceName,
    #[serde(flatten)]
    event: LogEvent,
}

pub fn run(args: &LogsArgs, ctx: &Ctx) -> Result<i32> {
    let root = ctx.root()?;
    let env = crate::config::load(&root, &args.env)?;
    let runtime =
        tokio::runtime::Runtime::new().map_err(|e| Error::io("start the async runtime", e))?;
    runtime.block_on(logs_of(&env, args, ctx))
}

async fn logs_of(env: &Environment, args: &LogsArgs, ctx: &Ctx) -> Result<i32> {
    let config = crate::aws::sdk_config(env).await;
    let client = Logs::new(&config).await?;
    let services: Vec<ServiceName> = match args.service {
        Some(s) => vec![s],
        None => ServiceName::ALL.to_vec(),
    };
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    };
    let mut from = now_ms() - i64::try_from(args.since * 1000).unwrap_or(0);
    let mut seen: HashSet<String> = HashSet::new();
    let mut first = true;
    loop {
        let mut batch = Vec::new();
        for svc in &services {
            let group = logs::group(&format!("{}-{svc}", env.name_prefix()));
            for event in client.events(&group, from).await? {
                let wanted = args
                    .task
                    .as_deref()
                    .is_none_or(|t| event.task.starts_with(t));
                if wanted && seen.insert(format!("{group}/{}", event.id)) {
                    batch.push(Line {
                        time: time_of(event.timestamp),
                        service: *svc,
                        event,
                    });
                }
            }
        }
        batch.sort_by_key(|l| l.event.timestamp);
        if let Some(last) = batch.last() {
            from = last.event.timestamp;
        }
        print(ctx, &batch, args.follow, first);
        first = false;
        if !args.follow {
            return Ok(exit::OK);
        }
        tokio::select! {
            () = tokio::time::sleep(FOLLOW_EVERY) => {}
            _ = tokio::signal::ctrl_c() => return Ok(exit::OK),
        }
    }
}

fn print(ctx: &Ctx, batch: &[Line], follow: bool, first: bool) {
    match ctx.out.format() {
        // Following, JSON is one object per line; otherwise one document.
        OutputFormat::Json if !follow => {
            crate::ui::print(&format!(
                "{}\n",
                crate::ui::text::json_safe(serde_json::to_string_pretty(batch).unwrap_or_default())
            ));
        }
        OutputFormat::Json | OutputFormat::Jsonl => {
            for l in batch {
                crate::ui::print(&format!(
                    "{}\n",
                    crate::ui::text::json_safe(serde_json::to_string(l).unwrap_or_default())
                ));
            }
        }
        OutputFormat::Human => {
            if batch.is_empty() && first && !follow {
                ctx.out.note("no log lines in that time");
            }
            for l in batch {
                let task: String = l.event.task.chars().take(8).collect();
                crate::ui::print(&format!(
                    "{} {:<9} {task} {}\n",
                    l.time,
                    l.service.as_str(),
                    crate::ui::text::printable(&l.event.message)
                ));
            }
        }
    }
}

fn time_of(ms: i64) -> String {
    aws_smithy_types::DateTime::from_millis(ms)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}
