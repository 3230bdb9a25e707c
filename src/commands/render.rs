//! `learntrac render ENV`: the Terraform tree and Dockerfiles for one environment.

use std::path::PathBuf;

use serde::Serialize;

use crate::Ctx;
use crate::cli::RenderArgs;
use crate::config;
use crate::error::{Result, exit};
use crate::render::{self, WriteReport};

#[derive(Serialize)]
struct Rendered {
    environment: String,
    out: PathBuf,
    files: usize,
    #[serde(flatten)]
    report: WriteReport,
    notes: Vec<String>,
}

pub fn run(args: &RenderArgs, ctx: &Ctx) -> Result<i32> {
    let root = ctx.root()?;
    let env = config::load(&root, &args.env)?;
    let files = render::render(&env, args.templates.as_deref())?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| render::default_out_dir(&root, &args.env));
    let report = render::write_tree(&out, &files)?;
    let mut notes = Vec::new();
    if env.tls.certificate_arn.is_none() {
        notes.push(format!(
            "{} has no tls.certificate_arn: the load balancer serves HTTP only",
            env.environment
        ));
    }
    if let Some(ep) = &env.aws.endpoint {
        notes.push(format!("every AWS call goes to {ep} (aws.endpoint)"));
    }
    for n in &notes {
        ctx.out.note(n);
    }
    let result = Rendered {
        environment: env.environment.clone(),
        out: out.clone(),
        files: files.len(),
        report,
        notes,
    };
    ctx.out.result(&result, || {
        format!(
            "rendered {} to {}: {} written, {} unchanged, {} removed",
            result.environment,
            out.display(),
            result.report.written.len(),
            result.report.unchanged.len(),
            result.report.removed.len()
        )
    });
    Ok(exit::OK)
}
