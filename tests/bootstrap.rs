//! `learntrac bootstrap` on an empty moto account: check-only changes nothing, `--yes`
//! creates the state bucket set up for state and every secret (generated or computed, never
//! printed), a second run changes nothing, and `deploy`'s preflight sends a newcomer here.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Cli, Project, Run, peer};
use serde_json::Value;

const ADMIN_PASSWORD: &str = "correct horse battery";

struct Account {
    project: Project,
    name: String,
    bucket: String,
    moto: String,
}

fn account(lock_table: bool) -> Account {
    account_on(
        lock_table,
        peer("LEARNTRAC_TEST_MOTO", "moto (the AWS endpoint)"),
    )
}

fn account_on(lock_table: bool, moto: String) -> Account {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "bs{}x{}",
        std::process::id() % 100_000,
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    let bucket = format!("{name}-tfstate");
    let project = Project::new();
    let lock = if lock_table {
        format!("    lock_table: {name}-locks\n")
    } else {
        String::new()
    };
    project
        .edit(
            "local",
            "endpoint: http://127.0.0.1:5000",
            &format!("endpoint: {moto}"),
        )
        .edit("local", "project: learntrac", &format!("project: {name}"))
        // As dev and prod have it: Trac's logins.
        .edit(
            "local",
            "      PYTHON_VERSION: \"2.7\"\n",
            "      PYTHON_VERSION: \"2.7\"\n    secrets:\n      TRAC_HTDIGEST: /learntrac/local/trac/htdigest\n",
        )
        .edit(
            "local",
            "terraform:\n  backend: local\n",
            &format!(
                "terraform:\n  backend: s3\n  s3:\n    bucket: {bucket}\n    key: {name}/local/terraform.tfstate\n{lock}"
            ),
        );
    let yaml = project.env_file("local");
    let text = std::fs::read_to_string(&yaml).expect("read");
    std::fs::write(
        &yaml,
        text.replace("/learntrac/local/", &format!("/{name}/local/")),
    )
    .expect("write");
    Account {
        project,
        name,
        bucket,
        moto,
    }
}

impl Account {
    fn cli(&self, args: &[&str]) -> Cli {
        Cli::new().root(self.project.path()).args(args)
    }

    /// `bootstrap local --yes` with Trac's first administrator (password on stdin), as JSON.
    fn bootstrap_yes(&self) -> Run {
        self.cli(&[
            "bootstrap",
            "local",
            "--yes",
            "--trac-admin",
            "admin",
            "--password-stdin",
            "-o",
            "json",
        ])
        .stdin(ADMIN_PASSWORD)
        .run()
    }

    fn s3(&self) -> aws_sdk_s3::Client {
        common::s3_client(&self.moto)
    }

    fn ssm(&self) -> aws_sdk_ssm::Client {
        common::ssm_client(&self.moto)
    }

    fn rendered_backend(&self) -> String {
        let render = self.cli(&["render", "local"]).run();
        assert_eq!(render.code, 0, "{}", render.stderr);
        std::fs::read_to_string(
            self.project
                .path()
                .join(".learntrac/local/terraform/versions.tf"),
        )
        .expect("versions.tf")
    }

    async fn parameter(&self, rel: &str) -> Option<String> {
        self.ssm()
            .get_parameter()
            .name(format!("/{}/local/{rel}", self.name))
            .with_decryption(true)
            .send()
            .await
            .ok()
            .and_then(|o| o.parameter().and_then(|p| p.value().map(str::to_string)))
    }
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

fn states(report: &Value) -> Vec<(String, String)> {
    report["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            (
                i["item"].as_str().unwrap_or("").to_string(),
                i["state"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn bootstrap_makes_a_fresh_account_ready_and_changes_nothing_the_second_time() {
    let a = account(false);

    // A newcomer who deploys first is sent here, and nothing is changed.
    let dry = a.cli(&["deploy", "local", "--dry-run"]).run();
    assert_eq!(dry.code, 3, "{}", dry.stderr);
    assert!(
        dry.stderr
            .contains(&format!("s3://{} does not exist", a.bucket))
            && dry.stderr.contains("learntrac bootstrap local --yes"),
        "{}",
        dry.stderr
    );

    // Check only: reports, creates nothing.
    let check = a.cli(&["bootstrap", "local", "-o", "json"]).run();
    assert_eq!(check.code, 3, "{}", check.stderr);
    let report = json(&check);
    assert!(
        states(&report)
            .iter()
            .any(|(i, s)| i.contains("(state bucket)") && s == "missing"),
        "{report}"
    );
    assert!(
        a.s3().head_bucket().bucket(&a.bucket).send().await.is_err(),
        "check-only created the bucket"
    );

    // --yes: everything, the admin's password from stdin.
    let run = a.bootstrap_yes();
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = json(&run);
    let got = states(&report);
    for item in [
        "(state bucket)",
        "versioning",
        "default encryption",
        "public access block",
        "TLS-only policy",
        "old versions expiry",
    ] {
        assert!(
            got.iter().any(|(i, s)| i.contains(item) && s == "created"),
            "{item} created: {got:?}"
        );
    }
    let s3 = a.s3();
    // moto's GetBucketVersioning has the wrong XML root for the SDK; learntrac reads around it.
    assert!(
        learntrac::aws::s3::versioned(&s3, &a.bucket)
            .await
            .expect("versioning"),
        "versioning enabled"
    );
    let policy = s3
        .get_bucket_policy()
        .bucket(&a.bucket)
        .send()
        .await
        .expect("policy");
    let policy: Value = serde_json::from_str(policy.policy().unwrap_or("{}")).expect("policy JSON");
    assert_eq!(
        policy["Statement"][0]["Condition"]["Bool"]["aws:SecureTransport"], "false",
        "{policy}"
    );
    let pab = s3
        .get_public_access_block()
        .bucket(&a.bucket)
        .send()
        .await
        .expect("public access block");
    let pab = pab.public_access_block_configuration().expect("config");
    assert_eq!(
        (pab.block_public_acls(), pab.restrict_public_buckets()),
        (Some(true), Some(true))
    );
    let rules = s3
        .get_bucket_lifecycle_configuration()
        .bucket(&a.bucket)
        .send()
        .await
        .expect("lifecycle");
    assert!(
        rules.rules().iter().any(|r| r
            .noncurrent_version_expiration()
            .and_then(|n| n.noncurrent_days())
            == Some(90)),
        "{rules:?}"
    );

    // Secrets: generated where a machine may choose, computed where a person did.
    let db = a.parameter("db/password").await.expect("db password");
    assert_eq!(db.len(), 32);
    assert!(db.chars().all(|c| c.is_ascii_alphanumeric()), "RDS-safe");
    let token = a.parameter("token-secret").await.expect("token secret");
    assert_eq!(token.len(), 96);
    let htdigest = a.parameter("trac/htdigest").await.expect("htdigest");
    let md5 = {
        use md5::{Digest, Md5};
        let h = Md5::digest(format!("admin:LearnTrac:{ADMIN_PASSWORD}").as_bytes());
        h.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    assert_eq!(htdigest, format!("admin:LearnTrac:{md5}"));
    for secret in [&db, &token, &md5, &ADMIN_PASSWORD.to_string()] {
        assert!(
            !run.stdout.contains(secret.as_str()) && !run.stderr.contains(secret.as_str()),
            "a secret value was printed"
        );
    }

    // Again: everything present, nothing changed, no value replaced.
    let again = a.cli(&["bootstrap", "local", "--yes", "-o", "json"]).run();
    assert_eq!(again.code, 0, "{}", again.stderr);
    let got = states(&json(&again));
    assert!(
        got.iter().all(|(_, s)| s == "present"),
        "the second run changed something: {got:?}"
    );
    assert_eq!(
        a.parameter("db/password").await.as_deref(),
        Some(db.as_str())
    );
    assert_eq!(
        a.parameter("token-secret").await.as_deref(),
        Some(token.as_str())
    );

    // Terraform uses the bucket, locking with S3's lock file.
    let versions = a.rendered_backend();
    assert!(versions.contains("use_lockfile") && !versions.contains("dynamodb_table"));
}

#[test]
fn an_old_lock_table_is_read_with_a_deprecation_note_and_trac_admin_is_asked_for() {
    let a = account(true);
    let run = a.cli(&["bootstrap", "local"]).run();
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stdout.contains("DynamoDB state locking is deprecated"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("--trac-admin USER"),
        "the htdigest needs a person: {}",
        run.stdout
    );
    let versions = a.rendered_backend();
    assert!(
        versions.contains("dynamodb_table") && versions.contains(&format!("\"{}-locks\"", a.name)),
        "{versions}"
    );
}

#[test]
fn a_lock_table_that_does_not_exist_stops_preflight_with_both_fixes() {
    let a = account(true);
    let boot = a.bootstrap_yes();
    assert_eq!(boot.code, 0, "{}\n{}", boot.stdout, boot.stderr);
    let table = format!("{}-locks", a.name);
    let dry = a.cli(&["deploy", "local", "--dry-run"]).run();
    assert_eq!(dry.code, 3, "{}", dry.stderr);
    assert!(
        dry.stderr.contains(&format!(
            "the Terraform lock table {table} (terraform.s3.lock_table) does not exist"
        )),
        "{}",
        dry.stderr
    );
    assert!(
        dry.stderr
            .contains("remove lock_table from environments/local.yaml")
            && dry
                .stderr
                .contains(&format!("aws dynamodb create-table --table-name {table}")),
        "{}",
        dry.stderr
    );

    // Once the table exists (made here with boto3, as the fix's command would), preflight
    // no longer names it.
    let python = peer("LEARNTRAC_TEST_MOTO_PYTHON", "moto's Python (with boto3)");
    let made = std::process::Command::new(python)
        .args([
            "-c",
            "import sys, boto3; boto3.client('dynamodb', endpoint_url=sys.argv[1], region_name='us-east-2', aws_access_key_id='testing', aws_secret_access_key='testing').create_table(TableName=sys.argv[2], AttributeDefinitions=[{'AttributeName': 'LockID', 'AttributeType': 'S'}], KeySchema=[{'AttributeName': 'LockID', 'KeyType': 'HASH'}], BillingMode='PAY_PER_REQUEST')",
            &a.moto,
            &table,
        ])
        .output()
        .expect("boto3");
    assert!(made.status.success(), "{made:?}");
    let dry = a.cli(&["deploy", "local", "--dry-run"]).run();
    assert!(
        !dry.stderr.contains("lock table"),
        "the table exists now: {}",
        dry.stderr
    );
}

#[test]
fn a_new_account_gets_ecs_s_service_linked_role_once() {
    // IAM is the account's: a moto of this test's own is an account nobody else touched.
    let moto = common::Moto::start();
    let a = account_on(false, moto.url.clone());
    let check = a.cli(&["bootstrap", "local", "-o", "json"]).run();
    let role = "ECS service-linked role AWSServiceRoleForECS";
    let state_of = |run: &Run| {
        states(&json(run))
            .into_iter()
            .find(|(item, _)| item == role)
            .map(|(_, state)| state)
    };
    let dry = a.cli(&["deploy", "local", "--dry-run"]).run();
    assert!(
        dry.stderr
            .contains("the account has no ECS service-linked role (AWSServiceRoleForECS)")
            && dry.stderr.contains(
                "aws iam create-service-linked-role --aws-service-name ecs.amazonaws.com"
            ),
        "{}",
        dry.stderr
    );
    assert_eq!(state_of(&check).as_deref(), Some("missing"));
    let made = a.bootstrap_yes();
    assert_eq!(made.code, 0, "{}", made.stderr);
    assert_eq!(state_of(&made).as_deref(), Some("created"));
    let again = a.cli(&["bootstrap", "local", "-o", "json"]).run();
    assert_eq!(state_of(&again).as_deref(), Some("present"));
    let dry = a.cli(&["deploy", "local", "--dry-run"]).run();
    assert!(
        !dry.stderr.contains("service-linked role"),
        "{}",
        dry.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn another_accounts_credentials_make_nothing_and_a_policy_is_read_not_named() {
    // The environment pins another account than the credentials' (moto's 123456789012):
    // nothing is made, and the message says whose credentials these are.
    let a = account(false);
    a.project.edit(
        "local",
        "account_id: \"123456789012\"",
        "account_id: \"999999999999\"",
    );
    let run = a.bootstrap_yes();
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stderr.contains("belong to account 123456789012")
            && run.stderr.contains("account 999999999999"),
        "{}",
        run.stderr
    );
    let head = a.s3().head_bucket().bucket(&a.bucket).send().await;
    assert!(head.is_err(), "no bucket was made with the wrong account");
    assert!(
        a.parameter("trac/htdigest").await.is_none(),
        "no secret either"
    );

    // The right account: made. Then a policy whose statement carries our Sid but allows
    // another account in is reported wrong, not "present".
    a.project.edit(
        "local",
        "account_id: \"999999999999\"",
        "account_id: \"123456789012\"",
    );
    assert_eq!(a.bootstrap_yes().code, 0);
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DenyInsecureTransport",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
            "Action": "s3:*",
            "Resource": [format!("arn:aws:s3:::{}", a.bucket), format!("arn:aws:s3:::{}/*", a.bucket)]
        }]
    });
    a.s3()
        .put_bucket_policy()
        .bucket(&a.bucket)
        .policy(policy.to_string())
        .send()
        .await
        .expect("policy");
    let run = a.cli(&["bootstrap", "local", "-o", "json"]).run();
    let report = json(&run);
    let tls = states(&report)
        .into_iter()
        .find(|(item, _)| item.ends_with("TLS-only policy"))
        .expect("the policy item");
    assert_eq!(tls.1, "wrong", "{}", run.stdout);
}
