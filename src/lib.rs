//! learntrac: the operator CLI for the Trac + LearnTrac stack.

pub mod aws;
pub mod bootstrap;
pub mod cli;
pub mod cli_image;
pub mod commands;
pub mod config;
pub mod deploy;
pub mod destroy;
pub mod diagnostic;
pub mod docker;
pub mod error;
pub mod git;
pub mod images;
pub mod local;
pub mod people;
pub mod registry;
pub mod render;
pub mod rollback;
pub mod secrets;
pub mod terraform;
pub mod ui;

use std::path::{Path, PathBuf};

use cli::{Cli, Command, ConfigCommand};
pub use error::{Error, Result};

/// What every command needs: where the project is and how to talk to the user.
pub struct Ctx {
    pub root_flag: Option<PathBuf>,
    pub out: ui::Output,
}

impl Ctx {
    /// The project root: `--root`, or the nearest folder upwards holding `environments/`.
    pub fn root(&self) -> Result<PathBuf> {
        if let Some(r) = &self.root_flag {
            return Ok(r.clone());
        }
        let cwd = std::env::current_dir().map_err(|e| Error::io("read the current folder", e))?;
        find_root(&cwd).ok_or(Error::NoProject { searched: cwd })
    }
}

fn find_root(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|d| config::environments_dir(d).is_dir())
        .map(Path::to_path_buf)
}

/// Runs a parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    let ctx = Ctx {
        root_flag: cli.global.root,
        out: ui::Output::new(cli.global.output, cli.global.quiet),
    };
    ui::set_verbose(cli.global.verbose);
    let result = match cli.command {
        Command::Config(ConfigCommand::Validate { envs }) => {
            commands::config::validate(&envs, &ctx)
        }
        Command::Config(ConfigCommand::Show { env }) => commands::config::show(&env, &ctx),
        Command::Render(args) => commands::render::run(&args, &ctx),
        Command::Build(args) => commands::images::build(&args, &ctx),
        Command::Push(args) => commands::images::push(&args, &ctx),
        Command::CliImage(args) => commands::images::cli_image(&args, &ctx),
        Command::Deploy(args) => commands::deploy::run(&args, &ctx),
        Command::Rollback(args) => commands::rollback::run(&args, &ctx),
        Command::Local(cmd) => commands::local::run(&cmd, &ctx),
        Command::Secrets(cmd) => commands::secrets::run(&cmd, &ctx),
        Command::People(cmd) => commands::people::run(&cmd, &ctx),
        Command::Status(args) => commands::status::run(&args, &ctx),
        Command::Bootstrap(args) => commands::bootstrap::run(&args, &ctx),
        Command::Destroy(args) => commands::destroy::run(&args, &ctx),
        Command::Logs(args) => commands::logs::run(&args, &ctx),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            ctx.out.error(&e);
            e.exit_code()
        }
    }
}
