//! Where a local stack keeps its data, and how `ps`/`down` find a running one.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Running {
    pub pid: u32,
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
}

impl Running {
    pub fn alive(&self) -> bool {
        Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}

impl TracRecord {
    /// Whether the recorded process is still this stack's `tracd` (a PID can be reused).
    pub fn alive(&self) -> bool {
        std::fs::read(format!("/proc/{}/cmdline", self.pid))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains("tracd"))
    }
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

    pub fn create(&self) -> Result<()> {
        std::fs::create_dir_all(&self.0)
            .map_err(|e| Error::io(format!("create {}", self.0.display()), e))
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
        std::fs::write(&file, &secret)
            .map_err(|e| Error::io(format!("write {}", file.display()), e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600));
        }
        Ok(secret)
    }

    pub fn running(&self) -> Option<Running> {
        self.recorded().filter(Running::alive)
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
