//! `learntrac local up|down|ps|logs`: the workflows live in `crate::local`.

use crate::Ctx;
use crate::cli::LocalCommand;
use crate::error::{Result, exit};
use crate::local::state::DataDir;
use crate::local::{down, logs, ps, up};

pub fn run(cmd: &LocalCommand, ctx: &Ctx) -> Result<i32> {
    let root = ctx.root().ok();
    let data = DataDir::locate(root.as_deref());
    match cmd {
        LocalCommand::Up(args) => up::up(args, root.as_deref(), &data, ctx),
        LocalCommand::Ps => {
            let stack = ps::ps(&data, ctx);
            ctx.out.result(&stack, || {
                let mut s = format!(
                    "{:<10} {:<40} {:<10} {}\n",
                    "COMPONENT", "STATE", "HEALTH", "PORTS"
                );
                for c in &stack.components {
                    s.push_str(&format!(
                        "{:<10} {:<40} {:<10} {}\n",
                        c.name, c.state, c.health, c.ports
                    ));
                }
                s
            });
            Ok(exit::OK)
        }
        LocalCommand::Down { volumes } => down::down(&data, *volumes, ctx),
        LocalCommand::Logs { component, follow } => logs::logs(ctx, &data, *component, *follow),
    }
}
