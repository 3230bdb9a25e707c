//! `learntrac bootstrap ENV`: parse, ask for what only a person knows, call, print.

use std::io::{IsTerminal, Read};

use crate::Ctx;
use crate::bootstrap::{self, Options, Report, State};
use crate::cli::BootstrapArgs;
use crate::error::{Error, Result, exit};

pub fn run(args: &BootstrapArgs, ctx: &Ctx) -> Result<i32> {
    let root = ctx.root()?;
    let env = crate::config::load(&root, &args.env)?;
    let trac_admin = match &args.trac_admin {
        Some(user) => Some((user.clone(), admin_password(user, args.password_stdin)?)),
        None => None,
    };
    let runtime =
        tokio::runtime::Runtime::new().map_err(|e| Error::io("start the async runtime", e))?;
    let report = runtime.block_on(bootstrap::run(
        &env,
        &Options {
            apply: args.yes,
            trac_admin,
        },
    ))?;
    ctx.out.result(&report, || human(&report));
    Ok(if report.unresolved() == 0 {
        exit::OK
    } else {
        exit::PREFLIGHT
    })
}

/// The administrator's password: stdin with --password-stdin, else a prompt (twice).
fn admin_password(user: &str, from_stdin: bool) -> Result<String> {
    let password = if from_stdin {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Error::io("read the password from stdin", e))?;
        s.trim_end_matches(['\n', '\r']).to_string()
    } else if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("password for Trac's {user} (hidden): "))
            .map_err(|e| Error::io("read the password", e))?;
        let again =
            rpassword::prompt_password("again: ").map_err(|e| Error::io("read the password", e))?;
        if first != again {
            return Err(Error::Invalid {
                what: "the two passwords differ".into(),
                hint: "run it again".into(),
            });
        }
        first
    } else {
        return Err(Error::Invalid {
            what: format!("no terminal to ask {user}'s password on"),
            hint: "pipe it in with --password-stdin".into(),
        });
    };
    if password.len() < 8 {
        return Err(Error::Invalid {
            what: format!("{user}'s password is shorter than 8 characters"),
            hint: "choose a longer one".into(),
        });
    }
    Ok(password)
}

fn human(r: &Report) -> String {
    let mut s = String::new();
    for i in &r.items {
        let mark = match i.state {
            State::Present => "ok      ",
            State::Created => "created ",
            State::Updated => "updated ",
            State::Missing => "missing ",
            State::Wrong => "WRONG   ",
        };
        s.push_str(&format!("{mark}{}  {}\n", i.item, i.detail));
        if let Some(fix) = &i.fix {
            s.push_str(&format!("          fix: {fix}\n"));
        }
    }
    for n in &r.notes {
        s.push_str(&format!("note: {n}\n"));
    }
    s.push_str(&match (r.unresolved(), r.changed(), r.applied) {
        (0, 0, _) => format!(
            "{}: everything a first deploy needs is in place",
            r.environment
        ),
        (0, n, _) => format!(
            "{}: {n} item(s) created or updated; ready for `learntrac deploy {}`",
            r.environment, r.environment
        ),
        (n, _, false) => format!(
            "{}: {n} item(s) to do; run with --yes to create them",
            r.environment
        ),
        (n, _, true) => format!("{}: {n} item(s) need you (see fix)", r.environment),
    });
    s
}
