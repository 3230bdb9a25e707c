//! `learntrac destroy ENV`: the CLI side of `crate::destroy`.

use crate::Ctx;
use crate::cli::DestroyArgs;
use crate::deploy::report::Reporter;
use crate::destroy::{self, Summary};
use crate::error::{Error, Result, exit};

pub fn run(args: &DestroyArgs, ctx: &Ctx) -> Result<i32> {
    let root = ctx.root()?;
    let env = crate::config::load(&root, &args.env)?;
    let runtime =
        tokio::runtime::Runtime::new().map_err(|e| Error::io("start the async runtime", e))?;
    let reporter = Reporter::new(ctx.out.format(), ctx.out.quiet());
    let summary = runtime.block_on(destroy::destroy(&root, &env, args, &reporter))?;
    ctx.out.result(&summary, || human(&summary));
    Ok(exit::OK)
}

fn human(s: &Summary) -> String {
    let mut out = if s.destroyed.is_empty() {
        format!("{}: nothing to destroy\n", s.environment)
    } else {
        format!(
            "destroyed {} ({} resources) in {:.1}s\n",
            s.environment,
            s.destroyed.len(),
            s.seconds
        )
    };
    for r in &s.remaining {
        out.push_str(&format!("  remains   {r}\n"));
    }
    out
}
