//! The embedded runtime's Trac database is Trac's own: the same tables and indexes real
//! Trac 1.6 creates, and real Trac can work in it.

mod common;

use std::path::Path;
use std::process::Command;

use common::required_tool;
use learntrac::local::embedded::ensure_trac_db;
use learntrac::local::state::DataDir;

/// `type name sql` of every table and index, sorted, via Python's sqlite3.
fn schema(python: &Path, db: &Path) -> String {
    let out = Command::new(python)
        .args(["-c", "import sqlite3, sys\nfor r in sqlite3.connect(sys.argv[1]).execute(\"SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name\"): print(*r)"])
        .arg(db)
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_embedded_trac_database_is_what_real_trac_creates_and_real_trac_uses_it() {
    let trac_admin = required_tool("TRAC_ADMIN", "Trac 1.6's trac-admin");
    let python = required_tool("TRAC_PYTHON", "Trac 1.6's Python");
    let dir = tempfile::tempdir().expect("temp dir");

    let real_env = dir.path().join("real");
    let ok = Command::new(&trac_admin)
        .arg(&real_env)
        .args(["initenv", "schema-check", "sqlite:db/trac.db"])
        .output()
        .expect("trac-admin")
        .status
        .success();
    assert!(ok, "trac-admin initenv");

    let data = DataDir(dir.path().join("ours"));
    data.create().expect("mkdir");
    assert!(ensure_trac_db(&data).await.expect("create"), "created");
    assert!(
        !ensure_trac_db(&data).await.expect("again"),
        "never recreated"
    );
    assert_eq!(
        schema(&python, &data.trac_db()),
        schema(&python, &real_env.join("db/trac.db"))
    );

    // Real Trac, pointed at our database, creates and reads a ticket with custom fields.
    std::fs::copy(data.trac_db(), real_env.join("db/trac.db")).expect("swap in our database");
    let script = format!(
        "from trac.env import Environment\nfrom trac.ticket.model import Ticket\n\
         env = Environment({env:?})\nt = Ticket(env); t['summary'] = 'x'; t['reporter'] = 'r'; tid = t.insert()\n\
         print(Ticket(env, tid)['summary'], env.database_version)",
        env = real_env.display().to_string()
    );
    let out = Command::new(&python)
        .args(["-c", &script])
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "x 45");
}
