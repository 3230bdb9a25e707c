//! `learntrac rollback ENV`: the CLI side of `crate::rollback`.

use std::time::Duration;

use crate::Ctx;
use crate::cli::RollbackArgs;
use crate::config::ServiceName;
use crate::deploy::report::Reporter;
use crate::error::{Error, Result, exit};
use crate::rollback::{self, Request, Summary, To};

pub fn run(args: &RollbackArgs, ctx: &Ctx) -> Result<i32> {
    let root = ctx.root()?;
    let env = crate::config::load(&root, &args.env)?;
    let to = target(&root, args)?;
    let scope: Vec<ServiceName> = match args.only {
        Some(s) => vec![s],
        None => ServiceName::ALL.to_vec(),
    };
    let runtime =
        tokio::runtime::Runtime::new().map_err(|e| Error::io("start the async runtime", e))?;
    let reporter = Reporter::new(ctx.out.format(), ctx.out.quiet());
    let request = Request {
        scope: &scope,
        to,
        yes: args.yes,
        dry_run: args.dry_run,
        no_wait: args.no_wait,
        timeout: args.timeout,
        poll: Duration::from_millis(args.poll_ms.max(10)),
    };
    let summary = runtime.block_on(rollback::rollback(&env, request, &reporter))?;
    ctx.out.result(&summary, || human(&summary));
    Ok(exit::OK)
}

/// A short number is a revision (git abbreviates commits to 7 or more characters); anything
/// else a commit git knows, or else an image tag as pushed.
fn target(root: &std::path::Path, args: &RollbackArgs) -> Result<To> {
    let Some(to) = args.to.as_deref() else {
        return Ok(To::Previous);
    };
    if !to.is_empty() && to.len() < 7 && to.bytes().all(|b| b.is_ascii_digit()) {
        let n = to.parse().map_err(|_| Error::Invalid {
            what: format!("--to {to}: not a revision number"),
            hint: "a task-definition revision, e.g. --to 7".into(),
        })?;
        if args.only.is_none() {
            return Err(Error::Invalid {
                what: format!("--to {to}: a revision number belongs to one service's family"),
                hint: "name the service: --only trac or --only learntrac".into(),
            });
        }
        return Ok(To::Revision(n));
    }
    if let Some(commit) = crate::git::commit_of(root, to) {
        return Ok(To::Commit(commit.chars().take(12).collect()));
    }
    if to.len() <= 128
        && to
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        return Ok(To::Commit(to.to_string()));
    }
    Err(Error::Invalid {
        what: format!(
            "--to {}: neither a revision, a commit, nor an image tag",
            crate::ui::text::shown(to)
        ),
        hint: "a revision number (with --only), a commit (git log), or an image tag".into(),
    })
}

fn human(s: &Summary) -> String {
    let mut out = if s.dry_run {
        format!(
            "dry run of a rollback of {}: nothing was changed\n",
            s.environment
        )
    } else {
        format!("rolled back {} in {:.1}s\n", s.environment, s.seconds)
    };
    for m in &s.services {
        let line = match (&m.to, &m.stays) {
            (Some(to), _) => {
                let rollout = m.rollout.as_ref().map_or("not awaited".to_string(), |r| {
                    format!("{} {}/{} running", r.rollout_state, r.running, r.desired)
                });
                format!("{} → {to}, {rollout}", m.from)
            }
            (None, Some(why)) => format!("stays: {why}"),
            (None, None) => format!("stays on {}", m.from),
        };
        out.push_str(&format!("  service   {:<10} {line}\n", m.service.as_str()));
    }
    if let Some(v) = &s.verify {
        let ok = v.probes.iter().filter(|p| p.ok).count();
        out.push_str(&format!(
            "  verified  {} target group(s) healthy, {ok}/{} paths answer\n",
            v.target_groups.len(),
            v.probes.len()
        ));
    }
    out
}
