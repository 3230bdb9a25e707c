//! `learntrac build ENV` and `learntrac push ENV`: the CLI side of `crate::images`.

use crate::Ctx;
use crate::cli::{CliImageArgs, ImageArgs, PushArgs};
use crate::error::{Error, Result, exit};
use crate::images::{ImageReport, images};
use crate::render;
use crate::ui::progress::Progress;

pub fn build(args: &ImageArgs, ctx: &Ctx) -> Result<i32> {
    run(args, ctx, false, false)
}

pub fn push(args: &PushArgs, ctx: &Ctx) -> Result<i32> {
    run(&args.image, ctx, args.skip_build, true)
}

fn run(args: &ImageArgs, ctx: &Ctx, skip_build: bool, push: bool) -> Result<i32> {
    let root = ctx.root()?;
    let env = crate::config::load(&root, &args.env)?;
    let runtime =
        tokio::runtime::Runtime::new().map_err(|e| Error::io("start the async runtime", e))?;
    let files = render::render(&env, args.templates.as_deref())?;
    let progress = Progress::new(ctx.out.quiet());
    let reports = runtime.block_on(images(
        &root, &env, &files, args.only, skip_build, push, &progress,
    ))?;
    ctx.out.result(&reports, || human(&reports));
    Ok(exit::OK)
}

pub fn cli_image(args: &CliImageArgs, ctx: &Ctx) -> Result<i32> {
    let root = ctx.root()?;
    let env = crate::config::load(&root, &args.env)?;
    let binary = match &args.binary {
        Some(b) => b.clone(),
        None => std::env::current_exe().map_err(|e| Error::io("find this learntrac binary", e))?,
    };
    let plugin_dir = args.plugin_dir.clone().ok_or_else(|| Error::Preflight {
        what: "no provider mirror for the image".into(),
        hint: format!(
            "pass --plugin-dir DIR (or set LEARNTRAC_TF_PLUGIN_DIR): a folder made by `terraform providers mirror -platform=linux_amd64 DIR` in .learntrac/{}/terraform",
            args.env
        ),
    })?;
    let runtime =
        tokio::runtime::Runtime::new().map_err(|e| Error::io("start the async runtime", e))?;
    let files = render::render(&env, args.templates.as_deref())?;
    let progress = Progress::new(ctx.out.quiet());
    let options = crate::cli_image::Options {
        binary: &binary,
        plugin_dir: &plugin_dir,
        push: args.push,
    };
    let report = runtime.block_on(crate::cli_image::cli_image(
        &root, &env, &files, options, &progress,
    ))?;
    ctx.out.result(&report, || {
        let mut s = format!(
            "cli        built {}  {}  tags {}\n           {}, {}\n",
            report.local,
            report.image_id,
            report.tags.join(", "),
            report.terraform,
            report.providers.join(", ")
        );
        if let (Some(repo), Some(p)) = (&report.repository, &report.push) {
            s.push_str(&format!("           pushed  {repo}@{}\n", p.digest));
        }
        s
    });
    Ok(exit::OK)
}

fn human(reports: &[ImageReport]) -> String {
    let mut s = String::new();
    for r in reports {
        let build = match &r.build {
            Some(b) if b.cached => format!("built (cached, {:.1}s)", b.seconds),
            Some(b) => format!("built in {:.1}s", b.seconds),
            None => "existing build".into(),
        };
        s.push_str(&format!(
            "{:<10} {build}  {}  tags {}\n",
            r.service,
            &r.image_id,
            r.tags.join(", ")
        ));
        if let (Some(repo), Some(p)) = (&r.repository, &r.push) {
            let what = if p.skipped {
                "already in the registry, push skipped".to_string()
            } else {
                format!("pushed in {:.1}s", p.seconds)
            };
            s.push_str(&format!("{:<10} {what}  {repo}@{}\n", "", p.digest));
            if let Some(c) = &r.build_cache {
                let what = if c.skipped {
                    "build cache unchanged in the registry".to_string()
                } else {
                    format!("build cache pushed in {:.1}s", c.seconds)
                };
                s.push_str(&format!("{:<10} {what}  {repo}:build-cache\n", ""));
            }
        }
    }
    s
}
