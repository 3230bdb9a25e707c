//! `learntrac secrets` against moto's SSM: a round trip in which no value appears in any
//! output without --reveal.

mod common;

use common::{Cli, Project, Run, peer};
use serde_json::Value;

const PASSWORD: &str = "hunter2-Very-Secret-Value";
const TOKEN: &str = "0123456789abcdef0123456789abcdef-token";

fn project() -> Project {
    let moto = peer("LEARNTRAC_TEST_MOTO", "moto (the AWS endpoint)");
    let p = Project::new();
    p.edit(
        "local",
        "endpoint: http://127.0.0.1:5000",
        &format!("endpoint: {moto}"),
    );
    p
}

fn secrets(p: &Project, args: &[&str]) -> Cli {
    Cli::new().root(p.path()).args(["secrets"]).args(args)
}

fn no_values(r: &Run) {
    for v in [PASSWORD, TOKEN] {
        assert!(
            !r.stdout.contains(v) && !r.stderr.contains(v),
            "a value leaked:\n{}\n{}",
            r.stdout,
            r.stderr
        );
    }
}

#[test]
fn round_trip_without_values_in_output() {
    let p = project();
    // Clean slate for the names this test uses (moto is shared with other tests).
    let others = [
        "db/trac-password",
        "db/service-password",
        "redis/auth-token",
    ];
    for n in ["db/password", "token-secret"].iter().chain(&others) {
        secrets(&p, &["delete", "local", n]).run();
    }

    let before = secrets(&p, &["list", "local", "-o", "json"]).run();
    assert_eq!(
        before.code, 3,
        "a required secret is missing: {}",
        before.stderr
    );
    let doc: Value = serde_json::from_str(&before.stdout).expect("JSON");
    let required = doc["required"].as_array().expect("required");
    assert!(
        required
            .iter()
            .any(|r| r["parameter"] == "/learntrac/local/db/password" && r["present"] == false),
        "{doc}"
    );
    let human = secrets(&p, &["list", "local"]).run();
    assert!(
        human
            .stdout
            .contains("learntrac secrets set local db/password"),
        "{}",
        human.stdout
    );

    let set = secrets(&p, &["set", "local", "db/password", "-o", "json"])
        .stdin(&format!("{PASSWORD}\n"))
        .run();
    assert_eq!(set.code, 0, "{}", set.stderr);
    let v: Value = serde_json::from_str(&set.stdout).expect("JSON");
    assert_eq!(v["name"], "/learntrac/local/db/password");
    assert_eq!(v["version"], 1);
    no_values(&set);
    let set2 = secrets(&p, &["set", "local", "/learntrac/local/token-secret"])
        .stdin(TOKEN)
        .run();
    assert_eq!(set2.code, 0, "{}", set2.stderr);
    no_values(&set2);
    // Each service's own database password and Redis's AUTH token (bootstrap generates
    // them; set by hand here).
    for n in others {
        let set = secrets(&p, &["set", "local", n])
            .stdin("an0ther-l0ng-value-0f-32-characters")
            .run();
        assert_eq!(set.code, 0, "{n}: {}", set.stderr);
    }

    let list = secrets(&p, &["list", "local", "-o", "json"]).run();
    assert_eq!(
        list.code, 0,
        "all required secrets present: {}",
        list.stderr
    );
    no_values(&list);
    let doc: Value = serde_json::from_str(&list.stdout).expect("JSON");
    let names: Vec<&str> = doc["parameters"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(
        names.contains(&"/learntrac/local/db/password")
            && names.contains(&"/learntrac/local/token-secret"),
        "{doc}"
    );

    let get = secrets(&p, &["get", "local", "db/password"]).run();
    assert_eq!(get.code, 0);
    assert!(get.stdout.contains("value hidden"), "{}", get.stdout);
    no_values(&get);
    let get_json = secrets(&p, &["get", "local", "db/password", "-o", "json"]).run();
    no_values(&get_json);
    let reveal = secrets(&p, &["get", "local", "db/password", "--reveal"]).run();
    assert_eq!(reveal.stdout.trim_end(), PASSWORD);

    // A password RDS would refuse at apply is refused here, and nothing is stored.
    for bad in ["p@ss-word-123", "pass/word-123", "pass word 123", "short"] {
        let refused = secrets(&p, &["set", "local", "db/password"])
            .stdin(bad)
            .run();
        assert_eq!(refused.code, 2, "{bad}: {}", refused.stderr);
        assert!(
            refused.stderr.contains("RDS would refuse") && !refused.stderr.contains(bad),
            "{}",
            refused.stderr
        );
    }
    let kept = secrets(&p, &["get", "local", "db/password", "--reveal"]).run();
    assert_eq!(kept.stdout.trim_end(), PASSWORD, "nothing stored");

    // A rotation stores the value and says what else must move.
    let again = secrets(&p, &["set", "local", "db/password", "-o", "json"])
        .stdin("rotated-value")
        .run();
    assert_eq!(
        serde_json::from_str::<Value>(&again.stdout).expect("JSON")["version"],
        2
    );
    assert!(
        again
            .stderr
            .contains("set database.password_version to 2 in environments/local.yaml"),
        "{}",
        again.stderr
    );

    let del = secrets(&p, &["delete", "local", "db/password"]).run();
    assert_eq!(del.code, 0);
    let gone = secrets(&p, &["get", "local", "db/password"]).run();
    assert_eq!(gone.code, 1);
    assert!(
        gone.stderr
            .contains("learntrac secrets set local db/password"),
        "{}",
        gone.stderr
    );

    let outside = secrets(&p, &["set", "local", "/other/app/key"])
        .stdin("x")
        .run();
    assert_eq!(outside.code, 3, "{}", outside.stderr);
    let empty = secrets(&p, &["set", "local", "db/password"])
        .stdin("")
        .run();
    assert_eq!(empty.code, 3, "{}", empty.stderr);
    secrets(&p, &["delete", "local", "token-secret"]).run();
}

/// No credentials anywhere: one line of cause and one of fix, no SDK debug structs; the
/// chain with -v.
#[test]
fn missing_credentials_are_one_line_with_the_fix() {
    let project = common::Project::new();
    let home = tempfile::tempdir().expect("home");
    let run = |extra: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_learntrac"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .args(["--root"])
            .arg(project.path())
            .args(["secrets", "list", "dev"])
            .args(extra);
        cmd.output().expect("run")
    };
    let out = run(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("no AWS credentials were found"), "{stderr}");
    assert_eq!(
        stderr.matches("AWS_PROFILE").count(),
        1,
        "the fix once: {stderr}"
    );
    assert!(
        !stderr.contains("DispatchFailure") && !stderr.contains("{ "),
        "{stderr}"
    );
    assert!(stderr.lines().count() <= 3, "{stderr}");
    let verbose = run(&["-v"]);
    let stderr = String::from_utf8_lossy(&verbose.stderr);
    assert!(stderr.contains("cause: "), "-v shows the chain: {stderr}");
}

/// `learntrac people`: a school's roster becomes Trac's logins in the TRAC_HTDIGEST secret —
/// every problem named before anything changes, passwords only in a private file, people
/// who have a login left alone, the administrator kept first, Trac's tasks replaced on
/// `--restart` — against moto's SSM and ECS.
#[tokio::test(flavor = "multi_thread")]
async fn a_roster_becomes_trac_logins_and_nothing_else_changes() {
    use std::os::unix::fs::PermissionsExt;
    let moto = peer("LEARNTRAC_TEST_MOTO", "moto (the AWS endpoint)");
    let project = format!("people{}", std::process::id());
    let p = Project::new();
    p.edit(
        "local",
        "endpoint: http://127.0.0.1:5000",
        &format!("endpoint: {moto}"),
    );
    p.edit(
        "local",
        "project: learntrac",
        &format!("project: {project}"),
    );
    p.edit(
        "local",
        "      PYTHON_VERSION: \"2.7\"\n",
        &format!(
            "      PYTHON_VERSION: \"2.7\"\n    secrets:\n      TRAC_HTDIGEST: /{project}/local/trac/htdigest\n"
        ),
    );
    let people = |args: &[&str]| Cli::new().root(p.path()).args(["people"]).args(args);
    let dir = tempfile::tempdir().expect("dir");
    let roster = dir.path().join("class-7b.csv");
    std::fs::write(
        &roster,
        "login,name,role\r\nalice,\"Smith, Alice\",student\r\nbob,Bob Brown,\r\ncarol,Carol Jones,Teacher\r\n",
    )
    .expect("roster");
    let roster_arg = roster.to_str().expect("path");
    let version = || -> (i64, String) {
        let r = secrets(
            &p,
            &["get", "local", "trac/htdigest", "--reveal", "-o", "json"],
        )
        .run();
        let v: Value = serde_json::from_str(&r.stdout).unwrap_or(Value::Null);
        (
            v["version"].as_i64().unwrap_or(0),
            v["value"].as_str().unwrap_or_default().to_string(),
        )
    };

    // No administrator yet: bootstrap comes first.
    let r = people(&["import", "local", roster_arg]).run();
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("--trac-admin"), "{}", r.stderr);
    let admin = learntrac::bootstrap::htdigest("admin", "admin-pw");
    let set = secrets(&p, &["set", "local", "trac/htdigest"])
        .stdin(&format!("{admin}\n"))
        .run();
    assert_eq!(set.code, 0, "{}", set.stderr);
    let (v1, _) = version();

    // A roster with problems: each named, nothing changed.
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "login,role\nalice,student\nbo b,student\ncarol,headteacher\nalice,\n",
    )
    .expect("bad");
    let r = people(&["import", "local", bad.to_str().expect("path")]).run();
    assert_eq!(r.code, 2, "{}", r.stderr);
    for want in [
        ":3:1: login `bo b`",
        ":4:7: role `headteacher`",
        ":5:1: login `alice` is also on line 2",
        "login,role",
    ] {
        assert!(r.stderr.contains(want), "{want}: {}", r.stderr);
    }
    assert_eq!(version().0, v1, "nothing stored");

    // A dry run says who; no file, no change.
    let r = people(&["import", "local", roster_arg, "--dry-run"]).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("would add 3 login(s): alice, bob, carol"),
        "{}",
        r.stdout
    );
    assert!(!dir.path().join("class-7b-passwords.csv").exists());
    assert_eq!(version().0, v1);

    // The import: three logins, their passwords in a private file and nowhere else.
    let r = people(&["import", "local", roster_arg, "-o", "json"]).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc: Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(doc["added"].as_array().map(Vec::len), Some(3), "{doc}");
    assert_eq!(doc["teachers"], serde_json::json!(["carol"]), "{doc}");
    assert_eq!(doc["restarted"], false);
    let file = dir.path().join("class-7b-passwords.csv");
    assert_eq!(doc["passwords_file"], file.to_str().expect("path"));
    let mode = std::fs::metadata(&file)
        .expect("passwords file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let handed: Vec<(String, String, String)> = std::fs::read_to_string(&file)
        .expect("read")
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_string(), f[1].to_string(), f[2].to_string())
        })
        .collect();
    assert_eq!(handed.len(), 3);
    assert_eq!(handed[2].1, "teacher");
    let (v2, lines) = version();
    assert_eq!(v2, v1 + 1);
    assert_eq!(
        lines.lines().next(),
        Some(admin.as_str()),
        "the administrator stays first"
    );
    for (login, _, password) in &handed {
        assert!(password.len() >= 12);
        assert!(
            lines
                .lines()
                .any(|l| l == learntrac::bootstrap::htdigest(login, password)),
            "{login}'s line matches the password handed out"
        );
        assert!(!r.stdout.contains(password.as_str()) && !r.stderr.contains(password.as_str()));
    }

    // The same roster again with one more person, with the old file still there: refused
    // until another file is named; then only dave is added, and nobody's password changes.
    std::fs::write(
        &roster,
        "login,role\nalice,student\nbob,student\ncarol,teacher\ndave,student\n",
    )
    .expect("roster");
    let r = people(&["import", "local", roster_arg]).run();
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("--passwords"), "{}", r.stderr);
    assert_eq!(version().0, v2);
    let second = dir.path().join("dave.csv");
    let r = people(&[
        "import",
        "local",
        roster_arg,
        "--passwords",
        second.to_str().expect("path"),
    ])
    .run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("added 1 login(s): dave; 3 already had one"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("teachers: carol"), "{}", r.stdout);
    let (_, after) = version();
    assert!(after.starts_with(&lines), "earlier lines unchanged");

    // Too many people for one parameter: refused with how many fit.
    let big = dir.path().join("school.csv");
    let rows: String = (0..200).map(|i| format!("student{i:03}\n")).collect();
    std::fs::write(&big, format!("login\n{rows}")).expect("big");
    let r = people(&[
        "import",
        "local",
        big.to_str().expect("path"),
        "--passwords",
        dir.path().join("x.csv").to_str().expect("path"),
    ])
    .run();
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("one SSM parameter holds at most 8192"),
        "{}",
        r.stderr
    );
    assert!(!dir.path().join("x.csv").exists());

    // The list: names only.
    let r = people(&["list", "local", "-o", "json"]).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc: Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(
        doc["logins"],
        serde_json::json!(["admin", "alice", "bob", "carol", "dave"])
    );
    assert_eq!(doc["administrator"], "admin");
    assert!(!r.stdout.contains("LearnTrac:"), "no digests: {}", r.stdout);

    // Removing: never the administrator; bob's login goes and Trac's tasks are replaced.
    let r = people(&["remove", "local", "admin"]).run();
    assert_eq!(r.code, 2, "{}", r.stderr);
    let config = common::sdk_config(&moto).await;
    let ecs = aws_sdk_ecs::Client::new(&config);
    let prefix = format!("{project}-local");
    common::moto_trac_service(&ecs, &prefix, "trac").await;
    let deployments = || async {
        ecs.describe_services()
            .cluster(format!("{prefix}-cluster"))
            .services(format!("{prefix}-trac"))
            .send()
            .await
            .expect("describe")
            .services()
            .first()
            .map(|s| s.deployments().to_vec())
            .unwrap_or_default()
    };
    let before = deployments().await;
    let r = people(&["remove", "local", "bob", "--restart", "-o", "json"]).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc: Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(doc["restarted"], true, "{doc}");
    let after = deployments().await;
    assert!(
        after
            .iter()
            .any(|d| d.status() == Some("PRIMARY") && !before.iter().any(|b| b.id() == d.id())),
        "a new deployment of Trac: {after:?}"
    );
    let (_, lines) = version();
    assert_eq!(
        lines
            .lines()
            .map(|l| l.split(':').next().unwrap_or_default())
            .collect::<Vec<_>>(),
        ["admin", "alice", "carol", "dave"]
    );
}
