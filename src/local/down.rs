//! `learntrac local down [--volumes]`: stop the stack; its data stays unless told.

use std::time::Duration;

use crate::Ctx;
use crate::error::{Error, Result, exit};
use crate::local::containers;
use crate::local::ps::env_prefix;
use crate::local::state::{DataDir, TracRecord};

pub fn down(data: &DataDir, volumes: bool, ctx: &Ctx) -> Result<i32> {
    // A `tracd` left behind by an `up` that was killed outright.
    let orphan = data.recorded().and_then(|r| r.trac);
    if let Some(r) = data.running() {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &r.pid.to_string()])
            .status();
        for _ in 0..200 {
            if !r.alive() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        data.mark_stopped();
        ctx.out
            .note(&format!("stopped the local stack (pid {})", r.pid));
    } else {
        ctx.out.note("no local stack is running");
    }
    if let Some(t) = orphan.filter(TracRecord::alive) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &t.pid.to_string()])
            .status();
        data.mark_stopped();
        ctx.out.note(&format!("stopped Trac (tracd pid {})", t.pid));
    }
    if let Some(stack) = env_prefix(ctx) {
        let runtime =
            tokio::runtime::Runtime::new().map_err(|e| Error::io("start the async runtime", e))?;
        let removed = runtime.block_on(async {
            match crate::docker::connect().await {
                Ok(docker) => containers::remove_stack(&docker, &stack, volumes).await,
                Err(_) => Ok(Vec::new()),
            }
        })?;
        if !removed.is_empty() {
            ctx.out.note(&format!("removed {}", removed.join(", ")));
        }
    }
    if volumes {
        if data.0.exists() {
            std::fs::remove_dir_all(&data.0)
                .map_err(|e| Error::io(format!("remove {}", data.0.display()), e))?;
        }
        ctx.out
            .note(&format!("removed the data in {}", data.0.display()));
    } else if data.0.exists() {
        ctx.out.note(&format!(
            "data kept in {} (remove it with `local down --volumes`)",
            data.0.display()
        ));
    }
    Ok(exit::OK)
}
