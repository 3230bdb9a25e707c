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
