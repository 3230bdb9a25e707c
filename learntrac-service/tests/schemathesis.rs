//! The OpenAPI document against the running service, by schemathesis (PyPI; scripts/test
//! installs it): every check, every phase (examples, coverage with negative data, fuzzing,
//! stateful through the document's links), as nobody, as a student and as an admin. Any
//! finding fails the test; the reports are kept in target/test-artifacts/.

mod common;

use std::time::Duration;

use common::{App, TracEnv, standard_seed};

#[tokio::test(flavor = "multi_thread")]
async fn every_response_is_the_one_the_openapi_document_describes() {
    let Ok(schemathesis) = std::env::var("SCHEMATHESIS") else {
        panic!(
            "SCHEMATHESIS is not set: run the tests through scripts/test (it installs schemathesis)"
        );
    };
    let env = TracEnv::postgres().await;
    standard_seed(&env);
    let app = App::spawn(&env.database_url).await;
    let artifacts =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&artifacts).expect("artifacts dir");
    // Signed in with Trac's cookie, given as the document's `tracCookie` scheme: the
    // ignored-auth check then tampers with it or sends a bad bearer token, and either must
    // be refused. (Beside a valid bearer token a tampered cookie is rightly ignored: the
    // token decides.)
    let config_dir = tempfile::tempdir().expect("tempdir");
    let mut failed = Vec::new();
    for (who, cookie) in [
        ("anonymous", None),
        ("student", Some("alice-cookie")),
        ("admin", Some("carol-cookie")),
    ] {
        let config = config_dir.path().join(format!("{who}.toml"));
        let auth = cookie.map_or(String::new(), |c| {
            format!("[auth.openapi.tracCookie]\napi_key = \"{c}\"\n")
        });
        std::fs::write(&config, auth).expect("write schemathesis.toml");
        let mut cmd = tokio::process::Command::new(&schemathesis);
        cmd.arg("--config-file").arg(&config).args([
            "run",
            &format!("{}/api/LearnTrac/openapi.json", app.base),
            "--url",
            &app.base,
            "--checks",
            "all",
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--max-examples",
            "30",
            "--seed",
            "20261130",
            // One worker: CPython 3.11's `ast` keeps its recursion depth in shared state,
            // and hypothesis parses sources to describe its filters; two threads doing that
            // at once fail with "AST constructor recursion depth mismatch" (seen in CI).
            "--workers",
            "1",
            "--request-timeout",
            "10",
        ]);
        // Its crash cache goes to the temporary folder, not the source tree.
        cmd.env("NO_COLOR", "1")
            .current_dir(config_dir.path())
            .kill_on_drop(true);
        let out = tokio::time::timeout(Duration::from_secs(600), cmd.output())
            .await
            .unwrap_or_else(|_| panic!("schemathesis ({who}) ran over 10 minutes"))
            .expect("run schemathesis");
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(artifacts.join(format!("schemathesis-{who}.txt")), &text)
            .expect("write report");
        if !out.status.success() {
            failed.push(format!("=== {who} ===\n{text}"));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
