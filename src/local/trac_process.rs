//! Trac itself beside the embedded runtime: Trac 1.6 on this machine's Python 3, in a
//! virtual environment learntrac manages (installed from PyPI on first use, pinned, cached
//! per user), serving the same SQLite database the in-process service uses. Trac 1.6 shares
//! database version 45 with the Trac 1.4.4 production runs, and the environment inherits
//! trac-legacy's `shared.ini` (LearnTrac's custom fields, the `mastered` workflow).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use super::state::DataDir;
use crate::error::{Error, Result};

/// What the managed environment holds; a change of pins makes a new one.
pub const PINS: &[&str] = &[
    "Trac==1.6",
    "Jinja2==3.1.6",
    "MarkupSafe==3.0.3",
    // Trac 1.6 imports pkg_resources: setuptools 82 removed it, and from 80 on every
    // import warns about it in Trac's log.
    "setuptools==69.5.1",
];

/// trac-legacy/config/shared.ini, built in: the settings every LearnTrac Trac inherits.
pub const SHARED_INI: &str = include_str!("../../trac-legacy/config/shared.ini");

/// trac-legacy's roles plugin (teachers assign, students work on their own), which
/// shared.ini's `permission_policies` names: the production image carries it too.
pub const ROLES_PLUGIN: &str = include_str!("../../trac-legacy/plugins/learntrac_roles.py");

/// Lines of Trac's log shown when it fails.
const LOG_TAIL: usize = 15;

/// The managed virtual environment: `$XDG_CACHE_HOME/learntrac/trac-1.6` (or
/// `~/.cache/…`), shared by every checkout of the user's.
pub fn venv_dir() -> PathBuf {
    std::env::var_os("LEARNTRAC_TRAC_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
                .unwrap_or_else(|| PathBuf::from("."))
                .join("learntrac/trac-1.6")
        })
}

fn failure(message: impl Into<String>) -> Error {
    Error::Local {
        component: "trac".into(),
        message: message.into(),
    }
}

/// The venv's `bin/`, installing Trac into it first when it is missing or its pins
/// changed. An error says what is missing (no Python 3, no venv module, PyPI unreachable).
pub async fn ensure_venv(say: &dyn Fn(&str)) -> Result<PathBuf> {
    let dir = venv_dir();
    let bin = dir.join("bin");
    let pins_file = dir.join(".learntrac-pins");
    let want = PINS.join(" ");
    if bin.join("tracd").exists()
        && std::fs::read_to_string(&pins_file).is_ok_and(|p| p.trim() == want)
    {
        return Ok(bin);
    }
    let python = which("python3").ok_or_else(|| {
        failure("Python 3 is not installed, so Trac cannot run here (install python3 and python3-venv, e.g. `apt-get install python3 python3-venv`); the API runs alone")
    })?;
    say(&format!(
        "installing Trac 1.6 into {} (first run only, about 20 s)",
        dir.display()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    run(
        Command::new(&python).arg("-m").arg("venv").arg(&dir),
        "python3 -m venv (install python3-venv)",
    )
    .await?;
    run(
        Command::new(bin.join("pip"))
            .args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-input",
            ])
            .args(PINS)
            // A machine-wide pip setting must not send the install elsewhere.
            .env_remove("PIP_FIND_LINKS")
            .env_remove("PIP_NO_INDEX"),
        "pip install of Trac 1.6 from PyPI",
    )
    .await?;
    std::fs::write(&pins_file, &want)
        .map_err(|e| Error::io(format!("write {}", pins_file.display()), e))?;
    Ok(bin)
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(program))
            .find(|p| p.is_file())
    })
}

async fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| failure(format!("{what}: {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = err.lines().rev().take(LOG_TAIL).collect();
    Err(failure(format!(
        "{what} failed ({}):\n    {}",
        out.status,
        tail.into_iter().rev().collect::<Vec<_>>().join("\n    ")
    )))
}

/// The Trac environment on the stack's SQLite database, in the data folder: made the first
/// time (with Trac's default wiki pages), its settings refreshed every time.
pub async fn ensure_env(data: &DataDir, bin: &Path) -> Result<PathBuf> {
    let env = data.trac_env();
    let fresh = !env.join("VERSION").exists();
    for sub in ["conf", "log", "htdocs", "plugins", "templates", "files"] {
        std::fs::create_dir_all(env.join(sub))
            .map_err(|e| Error::io(format!("create {}", env.join(sub).display()), e))?;
    }
    let write = |rel: &str, text: &str| {
        std::fs::write(env.join(rel), text)
            .map_err(|e| Error::io(format!("write {}", env.join(rel).display()), e))
    };
    write("conf/shared.ini", SHARED_INI)?;
    write("plugins/learntrac_roles.py", ROLES_PLUGIN)?;
    write(
        "conf/trac.ini",
        &format!(
            "# Written by `learntrac local up` at every start; settings belong in shared.ini.\n\
             [inherit]\nfile = {}\n\n[project]\nname = LearnTrac\n\n[trac]\ndatabase = sqlite:{}\n",
            env.join("conf/shared.ini").display(),
            data.trac_db().display()
        ),
    )?;
    if fresh {
        write("VERSION", "Trac Environment Version 1\n")?;
        let admin = bin.join("trac-admin");
        run(
            Command::new(&admin).arg(&env).arg("upgrade"),
            "trac-admin upgrade",
        )
        .await?;
        // The database came from Trac's schema without its default pages: WikiStart and
        // the guide are what a person sees first.
        let pages = Command::new(bin.join("python"))
            .args([
                "-c",
                "import os, trac.wiki; print(os.path.join(os.path.dirname(trac.wiki.__file__), 'default-pages'))",
            ])
            .output()
            .await
            .map_err(|e| failure(format!("cannot run the venv's python: {e}")))?;
        let pages = String::from_utf8_lossy(&pages.stdout).trim().to_string();
        run(
            Command::new(&admin)
                .arg(&env)
                .args(["wiki", "load", &pages]),
            "trac-admin wiki load (Trac's default pages)",
        )
        .await?;
    }
    Ok(env)
}

/// A running `tracd`.
pub struct TracProcess {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl TracProcess {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

/// Starts `tracd` on a free loopback port, its logins checked against `htdigest` (realm
/// LearnTrac, as production's), and waits until it serves the front page; a Trac that
/// exits or never answers is reported with its last log lines.
pub async fn start(
    bin: &Path,
    env: &Path,
    htdigest: &Path,
    log: &Path,
    timeout: Duration,
) -> Result<TracProcess> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Error::io("find a free port for Trac", e))?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| Error::io(format!("open {}", log.display()), e))?;
    let err = file
        .try_clone()
        .map_err(|e| Error::io(format!("open {}", log.display()), e))?;
    let child = Command::new(bin.join("tracd"))
        .args(["--single-env", "--hostname", "127.0.0.1", "--port"])
        .arg(port.to_string())
        .arg(format!("--auth=*,{},LearnTrac", htdigest.display()))
        .arg(env)
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        // Ctrl-C, `local down` or a failure of `up`: Trac goes with it.
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| failure(format!("cannot start tracd: {e}")))?;
    let mut trac = TracProcess {
        child,
        port,
        log: log.to_path_buf(),
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| failure(format!("cannot make an HTTP client: {e}")))?;
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = trac.child.try_wait() {
            return Err(failure(format!(
                "tracd exited ({status}) while starting; last lines of {}:\n{}",
                log.display(),
                tail(log)
            )));
        }
        if let Ok(r) = client.get(format!("{}/", trac.url())).send().await
            && r.status().is_success()
        {
            return Ok(trac);
        }
        if started.elapsed() > timeout {
            return Err(failure(format!(
                "tracd did not serve within {}s; last lines of {}:\n{}",
                timeout.as_secs(),
                log.display(),
                tail(log)
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The last lines of a log, indented for an error message.
pub fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL)..]
        .iter()
        .map(|l| format!("    {}", crate::ui::text::printable(l)))
        .collect::<Vec<_>>()
        .join("\n")
}
