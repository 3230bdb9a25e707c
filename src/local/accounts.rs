//! Sign-in on local stacks, the way production signs in: Trac's HTTP digest login against
//! an htdigest file (realm `LearnTrac`, as bootstrap's `TRAC_HTDIGEST` secret), which the
//! embedded runtime's tracd reads from the data folder and the Trac container receives as
//! `TRAC_HTDIGEST`. `--seed-demo` makes the demo's people with random passwords, printed
//! once and kept in the data folder (mode 600).

use super::state::DataDir;
use crate::error::Result;

/// The htdigest file tracd reads (empty until accounts are made: /login then asks for a
/// password instead of failing with Trac's "Authentication information not available").
pub const HTDIGEST: &str = "trac.htdigest";
/// The demo's people and their passwords, one per line: `user role password`.
pub const DEMO_ACCOUNTS: &str = "demo-accounts";

/// (user, role): the demo's permissions (demo.rs) make the role.
pub const DEMO_PEOPLE: &[(&str, &str)] = &[
    ("admin", "administrator"),
    (super::demo::TEACHER, "teacher"),
    ("alice", "student"),
    ("bob", "student"),
];

/// One person who can sign in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub user: String,
    pub role: String,
    pub password: String,
}

/// The htdigest file's path, made (empty) when missing.
pub fn htdigest(data: &DataDir) -> Result<std::path::PathBuf> {
    let path = data.0.join(HTDIGEST);
    if !path.exists() {
        data.write_private(HTDIGEST, "")?;
    }
    Ok(path)
}

/// The htdigest file's lines (for the Trac container's `TRAC_HTDIGEST`).
pub fn htdigest_lines(data: &DataDir) -> Result<String> {
    let path = htdigest(data)?;
    std::fs::read_to_string(&path)
        .map(|s| s.trim_end().to_string())
        .map_err(|e| crate::error::Error::io(format!("read {}", path.display()), e))
}

/// The demo's accounts: made the first time (returned as `(accounts, true)`, for `up` to
/// print their passwords once), read back afterwards. The htdigest file is rewritten from
/// them either way, so an edited or lost file is repaired.
pub fn ensure_demo(data: &DataDir) -> Result<(Vec<Account>, bool)> {
    let kept = std::fs::read_to_string(data.0.join(DEMO_ACCOUNTS))
        .ok()
        .map(|t| parse(&t))
        .filter(|a| !a.is_empty());
    let (accounts, made) = match kept {
        Some(a) => (a, false),
        None => {
            let mut made = Vec::new();
            for (user, role) in DEMO_PEOPLE {
                made.push(Account {
                    user: (*user).into(),
                    role: (*role).into(),
                    password: crate::bootstrap::password(12)?,
                });
            }
            let text: String = made
                .iter()
                .map(|a| format!("{} {} {}\n", a.user, a.role, a.password))
                .collect();
            data.write_private(
                DEMO_ACCOUNTS,
                &format!("# user role password (learntrac local up --seed-demo)\n{text}"),
            )?;
            (made, true)
        }
    };
    let lines: String = accounts
        .iter()
        .map(|a| crate::bootstrap::htdigest(&a.user, &a.password) + "\n")
        .collect();
    data.write_private(HTDIGEST, &lines)?;
    Ok((accounts, made))
}

fn parse(text: &str) -> Vec<Account> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some(Account {
                user: f.next()?.into(),
                role: f.next()?.into(),
                password: f.next()?.into(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_accounts_are_made_once_and_kept_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let data = DataDir(dir.path().to_path_buf());
        let (first, made) = ensure_demo(&data).expect("made");
        assert!(made);
        assert_eq!(first.len(), DEMO_PEOPLE.len());
        assert!(first.iter().all(|a| a.password.len() == 12));
        let (again, made) = ensure_demo(&data).expect("read");
        assert!(!made);
        assert_eq!(first, again);
        for f in [HTDIGEST, DEMO_ACCOUNTS] {
            let mode = std::fs::metadata(dir.path().join(f))
                .expect("file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
        let lines = htdigest_lines(&data).expect("lines");
        assert_eq!(lines.lines().count(), DEMO_PEOPLE.len());
        assert!(lines.starts_with("admin:LearnTrac:"), "{lines}");
    }
}
