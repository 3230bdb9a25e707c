//! Where a local stack keeps its data, and how `ps`/`down` find a running one.

use std::path::{Path, PathBuf};

use std::os::unix::fs::OpenOptionsExt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Running {
    pub pid: u32,
    /// When that process started (clock ticks since boot, /proc/PID/stat): with the PID it
    /// names one process, where a PID alone may since belong to another.
    #[serde(default)]
    pub pid_started: Option<u64>,
    pub runtime: String,
    pub router_port: u16,
    pub started_at: u64,
    /// The embedded runtime's `tracd`, when it runs one.
    #[serde(default)]
    pub trac: Option<TracRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TracRecord {
    pub pid: u32,
    pub port: u16,
    #[serde(default)]
    pub pid_started: Option<u64>,
}

impl Running {
    /// Whether the recorded process still runs: same PID and same start time.
    pub fn alive(&self) -> bool {
        same_process(self.pid, self.pid_started)
    }
}

impl TracRecord {
    /// Whether the recorded process is still this stack's `tracd` (a PID can be reused).
    pub fn alive(&self) -> bool {
        same_process(self.pid, self.pid_started)
            && std::fs::read(format!("/proc/{}/cmdline", self.pid))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("tracd"))
    }
}

/// The start time of process `pid` (field 22 of /proc/PID/stat), if it exists.
pub fn process_started(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn same_process(pid: u32, started: Option<u64>) -> bool {
    match (process_started(pid), started) {
        (Some(now), Some(then)) => now == then,
        // Records written before start times were kept: the PID is all there is.
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// Held by `local up` for the stack's life: one stack per data folder.
pub struct StackLock {
    _file: std::fs::File,
}

pub struct DataDir(pub PathBuf);

impl DataDir {
    /// `.learntrac/local/embedded` in a checkout, else the user's data folder.
    pub fn locate(root: Option<&Path>) -> Self {
        match root {
            Some(r) => DataDir(r.join(".learntrac/local/embedded")),
            None => {
                let base = std::env::var_os("XDG_DATA_HOME")
                    .map(PathBuf::from)
                    .or_else(|| {
                        std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/share"))
                    })
                    .unwrap_or_else(|| PathBuf::from("."));
                DataDir(base.join("learntrac/local/embedded"))
            }
        }
    }

    pub fn trac_db(&self) -> PathBuf {
        self.0.join("trac.db")
    }

    pub fn log(&self) -> PathBuf {
        self.0.join("service.log")
    }

    /// The Trac environment (conf/trac.ini, attachments) on `trac.db`.
    pub fn trac_env(&self) -> PathBuf {
        self.0.join("trac")
    }

    /// What the embedded runtime's `tracd` writes.
    pub fn trac_log(&self) -> PathBuf {
        self.0.join("trac.log")
    }

    fn state_file(&self) -> PathBuf {
        self.0.join("running.json")
    }

    fn lock_file(&self) -> PathBuf {
        self.0.join("stack.lock")
    }

    /// Creates the folder, readable by its owner only (it holds the stack's secrets).
    pub fn create(&self) -> Result<()> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let fail = |e| Error::io(format!("create {}", self.0.display()), e);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.0)
            .map_err(fail)?;
        std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o700)).map_err(fail)
    }

    /// Takes the folder's lock for as long as the returned value lives; fails if another
    /// `local up` holds it.
    pub fn lock(&self) -> Result<StackLock> {
        let path = self.lock_file();
        let file =
            private_file(&path).map_err(|e| Error::io(format!("open {}", path.display()), e))?;
        match file.try_lock() {
            Ok(()) => Ok(StackLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => {
                let who = self
                    .recorded()
                    .map(|r| format!(" (pid {}, http://127.0.0.1:{})", r.pid, r.router_port))
                    .unwrap_or_default();
                Err(Error::Preflight {
                    what: format!(
                        "a local stack is already running on {}{who}",
                        self.0.display()
                    ),
                    hint: "use it, or stop it with `learntrac local down`".into(),
                })
            }
            Err(std::fs::TryLockError::Error(e)) => {
                Err(Error::io(format!("lock {}", path.display()), e))
            }
        }
    }

    /// Whether some `local up` holds the folder's lock now.
    fn locked(&self) -> bool {
        std::fs::File::open(self.lock_file())
            .is_ok_and(|f| matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock)))
    }

    /// The bearer-token secret of this stack, made once and kept (mode 600).
    pub fn token_secret(&self) -> Result<String> {
        self.secret("token-secret")
    }

    /// A random secret of this stack (48 hex digits), made once and kept in the data folder
    /// (mode 600).
    pub fn secret(&self, name: &str) -> Result<String> {
        let file = self.0.join(name);
        if let Ok(s) = std::fs::read_to_string(&file)
            && s.trim().len() >= 32
        {
            return Ok(s.trim().to_string());
        }
        let mut bytes = [0u8; 24];
        let mut f =
            std::fs::File::open("/dev/urandom").map_err(|e| Error::io("read /dev/urandom", e))?;
        std::io::Read::read_exact(&mut f, &mut bytes)
            .map_err(|e| Error::io("read /dev/urandom", e))?;
        let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        self.write_private(name, &secret)?;
        Ok(secret)
    }

    /// Writes a file of the folder readable by its owner only: born 0600 under a temporary
    /// name, renamed into place, so never readable by others and never half-written.
    pub fn write_private(&self, name: &str, text: &str) -> Result<()> {
        let file = self.0.join(name);
        let tmp = self.0.join(format!(".{name}.tmp"));
        let _ = std::fs::remove_file(&tmp);
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
            .and_then(|()| std::fs::rename(&tmp, &file));
        written.map_err(|e| Error::io(format!("write {}", file.display()), e))
    }

    /// The stack running on this folder: its lock is held and the recorded process is the
    /// one that wrote the record.
    pub fn running(&self) -> Option<Running> {
        self.recorded().filter(|r| self.locked() && r.alive())
    }

    /// What the state file says, whether or not that process still runs.
    pub fn recorded(&self) -> Option<Running> {
        let text = std::fs::read_to_string(self.state_file()).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn mark_running(&self, r: &Running) -> Result<()> {
        let text = serde_json::to_string(r).unwrap_or_default();
        std::fs::write(self.state_file(), text)
            .map_err(|e| Error::io("write the stack's state file", e))
    }

    pub fn mark_stopped(&self) {
        let _ = std::fs::remove_file(self.state_file());
    }
}

/// Opens (creating with mode 0600) a file only its owner may read.
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn secrets_and_the_folder_are_private_from_birth() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = DataDir(dir.path().join("a/b/data"));
        data.create().expect("create");
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&data.0), 0o700);
        let s = data.secret("token-secret").expect("secret");
        assert_eq!(s.len(), 48);
        assert_eq!(mode(&data.0.join("token-secret")), 0o600);
        assert_eq!(data.secret("token-secret").expect("again"), s, "kept");
    }

    #[test]
    fn one_lock_per_folder_and_a_reused_pid_is_not_the_stack() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = DataDir(dir.path().to_path_buf());
        let held = data.lock().expect("first lock");
        assert!(
            data.lock().is_err(),
            "a second up on the same folder is refused"
        );
        let me = Running {
            pid: std::process::id(),
            pid_started: process_started(std::process::id()),
            runtime: "embedded".into(),
            router_port: 1,
            started_at: 0,
            trac: None,
        };
        data.mark_running(&me).expect("record");
        assert!(data.running().is_some());
        // The same PID with another start time is another process.
        let other = Running {
            pid_started: me.pid_started.map(|t| t + 1),
            ..me.clone()
        };
        data.mark_running(&other).expect("record");
        assert!(data.running().is_none());
        // No lock held: nothing runs here, whatever the record says.
        data.mark_running(&me).expect("record");
        drop(held);
        assert!(data.running().is_none());
    }
}
