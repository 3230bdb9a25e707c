//! `learntrac deploy ENV`: the CLI side of `crate::deploy`.

use crate::Ctx;
use crate::cli::DeployArgs;
use crate::deploy::report::Reporter;
use crate::deploy::{self, Summary};
use crate::error::{Error, Result, exit};

pub fn run(args: &DeployArgs, ctx: &Ctx) -> Result<i32> {
    let root = ctx.root()?;
    let env = crate::config::load(&root, &args.env)?;
    let runtime =
        tokio::runtime::Runtime::new().map_err(|e| Error::io("start the async runtime", e))?;
    let reporter = Reporter::new(ctx.out.format(), ctx.out.quiet());
    let summary = runtime.block_on(deploy::deploy(&root, &env, args, &reporter))?;
    ctx.out.result(&summary, || human(&summary));
    Ok(exit::OK)
}

fn human(s: &Summary) -> String {
    let mut out = String::new();
    if s.dry_run {
        out.push_str(&format!(
            "dry run of {}: nothing was built, pushed or applied\n",
            s.environment
        ));
    } else {
        out.push_str(&format!(
            "deployed {} to account {} in {:.1}s\n",
            s.environment, s.account, s.seconds
        ));
    }
    out.push_str(&format!(
        "  path      {} ({})\n",
        s.path.path, s.path.reason
    ));
    out.push_str(&format!(
        "  plan      {}\n",
        if s.plan.changes {
            format!(
                "{} to add, {} to change, {} to destroy",
                s.plan.add, s.plan.change, s.plan.destroy
            )
        } else {
            "no changes".into()
        }
    ));
    for i in &s.images {
        if let (Some(repo), Some(p)) = (&i.repository, &i.push) {
            out.push_str(&format!(
                "  image     {:<10} {repo}@{}\n",
                i.service.as_str(),
                p.digest
            ));
        }
    }
    for svc in &s.services {
        let rollout = svc.rollout.as_ref().map_or("not awaited".to_string(), |r| {
            format!(
                "{} {}/{} running in {:.1}s",
                r.rollout_state, r.running, r.desired, r.seconds
            )
        });
        out.push_str(&format!(
            "  service   {:<10} {} ({}), {rollout}\n",
            svc.service.as_str(),
            svc.task_definition,
            svc.redeploy
        ));
    }
    if let Some(v) = &s.verify {
        let ok = v.probes.iter().filter(|p| p.ok).count();
        out.push_str(&format!(
            "  verified  {} target group(s) healthy, {ok}/{} paths answer\n",
            v.target_groups.len(),
            v.probes.len()
        ));
    }
    let phases: Vec<String> = s
        .phases
        .iter()
        .map(|p| format!("{} {:.1}s", p.phase, p.seconds))
        .collect();
    out.push_str(&format!("  phases    {}\n", phases.join(", ")));
    if let Some(url) = &s.url {
        out.push_str(&format!("  url       {url}\n"));
    }
    out
}
