//! The whole `learntrac deploy` against real peers: a moto of its own as the AWS endpoint
//! (with scripts/lib/moto_server.py's additions), the real `terraform` and mirrored AWS
//! provider applying the rendered stack to it, this machine's Docker Engine and the loopback
//! registry; then `status` reads back what was deployed.
//!
//! What moto has no data plane for is stood in for, and said so: ECS never registers task IPs
//! in target groups, so the test registers one per target group (as ECS would); the load
//! balancer's DNS name resolves nowhere, so `deploy.public_url` points the probe at a small
//! local HTTP server standing in for the ALB.

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Cli, Moto, Run, commit_all, peer, repo_root, sdk_config, write};
use serde_json::Value;

/// Trac's first administrator's password, given to `bootstrap`.
const ADMIN_PASSWORD: &str = "admin-pw-5c7e1a9d3f";

impl Drop for DeployProject {
    fn drop(&mut self) {
        common::remove_images(&self.prefix);
    }
}

struct DeployProject {
    dir: tempfile::TempDir,
    /// Terraform's state bucket (made by `bootstrap`) and the state's key in it.
    bucket: String,
    state_key: String,
    prefix: String,
    tfrc: PathBuf,
    moto: String,
}

impl DeployProject {
    fn new(moto: &str, probe_port: u16) -> Self {
        let py27 = peer(
            "LEARNTRAC_TEST_PY27_IMAGE",
            "the python:2.7-slim-buster stand-in",
        );
        let registry = peer("LEARNTRAC_TEST_REGISTRY", "a loopback docker-registry");
        let plugins = peer("LEARNTRAC_TF_PLUGIN_DIR", "the terraform provider mirror");
        let dir = tempfile::tempdir().expect("temp dir");
        // One name per project: tests run in parallel, and each removes its images.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let project = format!(
            "dp{}x{}",
            std::process::id() % 100_000,
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let local = std::fs::read_to_string(repo_root().join("environments/local.yaml"))
            .expect("local.yaml");
        // State as the shipped dev environment keeps it (its `terraform:` section verbatim:
        // the bucket bootstrap makes, S3's lock file); this moto is the test's own.
        let dev =
            std::fs::read_to_string(repo_root().join("environments/dev.yaml")).expect("dev.yaml");
        let shipped_backend: String = dev
            .split_once("\nterraform:\n")
            .map(|(_, rest)| {
                let section: Vec<&str> = rest
                    .lines()
                    .take_while(|l| l.starts_with(' ') || l.is_empty())
                    .collect();
                format!("terraform:\n{}\n", section.join("\n").trim_end())
            })
            .expect("dev.yaml's terraform section");
        let bucket = shipped_backend
            .lines()
            .find_map(|l| l.trim().strip_prefix("bucket: "))
            .expect("the shipped state bucket")
            .to_string();
        let state_key = shipped_backend
            .lines()
            .find_map(|l| l.trim().strip_prefix("key: "))
            .expect("the shipped state key")
            .to_string();
        let yaml = common::with_service_bases(&local)
            .replace("project: learntrac", &format!("project: {project}"))
            .replace(
                "endpoint: http://127.0.0.1:5000",
                &format!("endpoint: {moto}"),
            )
            .replace("python:2.7-slim-buster", &py27)
            .replace("/learntrac/local/", &format!("/{project}/local/"))
            .replace("terraform:\n  backend: local\n", &shipped_backend)
            + &format!(
                "registry: {registry}\ndeploy:\n  public_url: http://127.0.0.1:{probe_port}\n  verify_timeout: 60\n"
            );
        let w = |rel: &str, text: &str| write(dir.path(), rel, text);
        w("environments/local.yaml", &yaml);
        // Both images from their production Dockerfiles and build contexts, on stand-ins
        // for their bases (scripts/test built the service's once; these builds reuse it).
        std::fs::create_dir_all(dir.path().join("tmpl")).expect("templates folder");
        common::copy_trac_legacy(dir.path());
        common::copy_service_workspace(dir.path());
        w(".gitignore", ".learntrac/\n");
        let tfrc = dir.path().join("terraformrc");
        std::fs::write(
            &tfrc,
            format!(
                "provider_installation {{\n  filesystem_mirror {{\n    path = \"{plugins}\"\n  }}\n}}\n"
            ),
        )
        .expect("terraformrc");
        assert!(
            yaml.contains("backend: s3"),
            "the S3 backend replaced the local one"
        );
        let p = DeployProject {
            dir,
            bucket,
            state_key,
            prefix: format!("{project}-local"),
            tfrc,
            moto: moto.to_string(),
        };
        commit_all(p.path(), "first");
        p
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `deploy --dry-run --full` plans no change; on failure, each planned attribute change.
    fn assert_plans_nothing(&self, when: &str) {
        let plan = self
            .cli(&[
                "deploy",
                "local",
                "--templates",
                "tmpl",
                "--dry-run",
                "--full",
                "-o",
                "json",
            ])
            .run();
        assert_eq!(plan.code, 0, "{}", plan.stderr);
        let planned = json(&plan)["plan"].clone();
        assert!(
            planned["changes"] == false,
            "a plan {when}: {planned}\n{}",
            planned_differences(self)
        );
    }

    /// Terraform's state as the S3 backend keeps it; None before the first apply.
    async fn state(&self) -> Option<Vec<u8>> {
        let got = common::s3_client(&self.moto)
            .get_object()
            .bucket(&self.bucket)
            .key(&self.state_key)
            .send()
            .await
            .ok()?;
        Some(got.body.collect().await.ok()?.into_bytes().to_vec())
    }

    /// Redis's AUTH token, as bootstrap made it.
    async fn redis_token(&self) -> String {
        let project = self.prefix.trim_end_matches("-local");
        common::ssm_client(&self.moto)
            .get_parameter()
            .name(format!("/{project}/local/redis/auth-token"))
            .with_decryption(true)
            .send()
            .await
            .expect("the Redis token")
            .parameter()
            .and_then(|p| p.value())
            .expect("a value")
            .to_string()
    }

    /// The values of every secret the environment's tasks read.
    async fn secret_values(&self) -> Vec<String> {
        let ssm = common::ssm_client(&self.moto);
        let mut values = vec![ADMIN_PASSWORD.to_string()];
        let project = self.prefix.trim_end_matches("-local");
        let listed = ssm
            .get_parameters_by_path()
            .path(format!("/{project}/local/"))
            .recursive(true)
            .with_decryption(true)
            .send()
            .await
            .expect("the environment's parameters");
        let mut names = Vec::new();
        for parameter in listed.parameters() {
            let value = parameter.value().unwrap_or_default();
            names.push(parameter.name().unwrap_or_default().to_string());
            values.push(value.to_string());
            // The htdigest line's hash part alone, too.
            if let Some((_, hash)) = value.rsplit_once(':') {
                values.push(hash.to_string());
            }
        }
        for name in [
            "db/password",
            "db/trac-password",
            "db/service-password",
            "token-secret",
            "redis/auth-token",
        ] {
            assert!(
                names.iter().any(|n| n.ends_with(name)),
                "bootstrap made {name}: {names:?}"
            );
        }
        values
    }

    fn commit(&self, message: &str) {
        commit_all(self.path(), message);
    }

    /// `learntrac ARGS` in CI mode; `tmpl` stands for the project's substitute templates.
    fn cli(&self, args: &[&str]) -> Cli {
        let tmpl = self.path().join("tmpl");
        let args = args.iter().map(|a| {
            if *a == "tmpl" {
                tmpl.clone().into_os_string()
            } else {
                (*a).into()
            }
        });
        Cli::new()
            .root(self.path())
            .args(args)
            .env("TF_CLI_CONFIG_FILE", &self.tfrc.to_string_lossy())
            .env("CI", "true")
    }
}

/// Stands in for the ALB's data plane: answers 200 to every GET.
fn probe_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut s in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    port
}

/// Does what ECS does for a service with a load balancer: registers its tasks' IPs.
fn register_targets(endpoint: String, stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(async move {
            let config = sdk_config(&endpoint).await;
            let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
            let mut done = std::collections::HashSet::new();
            while !stop.load(Ordering::SeqCst) {
                if let Ok(out) = elb.describe_target_groups().send().await {
                    for tg in out.target_groups() {
                        let arn = tg.target_group_arn().unwrap_or_default().to_string();
                        if done.contains(&arn) {
                            continue;
                        }
                        let target =
                            aws_sdk_elasticloadbalancingv2::types::TargetDescription::builder()
                                .id("10.0.1.17")
                                .port(tg.port().unwrap_or(80))
                                .build();
                        if elb
                            .register_targets()
                            .target_group_arn(&arn)
                            .targets(target)
                            .send()
                            .await
                            .is_ok()
                        {
                            done.insert(arn);
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    });
}

/// A call to the AWS endpoint (moto) the SDKs this crate has do not cover: JSON protocol
/// with an `X-Amz-Target`, or the query protocol when the target is empty.
async fn moto_json(endpoint: &str, service: &str, target: &str, body: String) -> String {
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential=testing/20261130/us-east-2/{service}/aws4_request, SignedHeaders=host, Signature=0"
    );
    let mut req = reqwest::Client::new()
        .post(format!("{endpoint}/"))
        .header("authorization", auth)
        .body(body);
    req = if target.is_empty() {
        req.header("content-type", "application/x-www-form-urlencoded")
    } else {
        req.header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", target)
    };
    let resp = req.send().await.expect("a call to the AWS endpoint");
    resp.text().await.expect("its answer")
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(&text[from..to])
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\nstderr:\n{}", run.stdout, run.stderr))
}

fn assert_no_secret(secrets: &[String], what: &str, text: &str) {
    for s in secrets {
        assert!(
            !text.contains(s.as_str()),
            "a secret value appears in {what}"
        );
    }
}

/// What the last saved plan changes, attribute by attribute (for a failure's message).
fn planned_differences(p: &DeployProject) -> String {
    let shown = Command::new("terraform")
        .args(["show", "-json", "learntrac.tfplan"])
        .current_dir(p.path().join(".learntrac/local/terraform"))
        .env("TF_CLI_CONFIG_FILE", &p.tfrc)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    let Ok(v) = serde_json::from_str::<Value>(&shown) else {
        return shown;
    };
    let mut out = String::new();
    for rc in v["resource_changes"].as_array().into_iter().flatten() {
        if rc["change"]["actions"] != serde_json::json!(["no-op"]) {
            let (before, after) = (&rc["change"]["before"], &rc["change"]["after"]);
            for (k, a) in after.as_object().into_iter().flatten() {
                if before.get(k.as_str()) != Some(a) {
                    out.push_str(&format!(
                        "{} {k}: {} -> {a}\n",
                        rc["address"],
                        before[k.as_str()]
                    ));
                }
            }
        }
    }
    out
}

/// Plain CI lines: `2026-11-26T01:02:03Z   12.3s [phase] …`, never a terminal redraw.
fn assert_plain_lines(stderr: &str) {
    assert!(!stderr.contains('\x1b'), "no escape sequences in CI output");
    assert!(!stderr.contains('\r'), "no carriage returns in CI output");
    for line in stderr
        .lines()
        .filter(|l| !l.starts_with("error") && !l.starts_with(' '))
    {
        let (stamp, rest) = line.split_at(line.find(' ').unwrap_or(0));
        assert!(
            stamp.len() == 20 && stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
            "timestamped line: {line}"
        );
        assert!(
            rest.trim_start().contains("s ["),
            "elapsed and phase: {line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_applies_the_stack_rolls_out_verifies_and_status_reads_it_back() {
    let moto = Moto::start();
    let probe = probe_server();
    let p = DeployProject::new(&moto.url, probe);
    let stop = Arc::new(AtomicBool::new(false));
    register_targets(p.moto.clone(), stop.clone());

    // 1. A fresh account: preflight names bootstrap for the state bucket and each secret,
    //    and changes nothing; bootstrap makes it all, and a second run changes nothing.
    let run = p.cli(&["deploy", "local", "--templates", "tmpl"]).run();
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "the Terraform state bucket s3://{} does not exist",
            p.bucket
        )),
        "{}",
        run.stderr
    );
    for name in ["db/password", "token-secret"] {
        assert!(
            run.stderr.contains(&format!(
                "fix: learntrac bootstrap local --yes (generates what a machine may choose), or learntrac secrets set local {name}"
            )),
            "{}",
            run.stderr
        );
    }
    assert!(run.stderr.contains("nothing was changed"), "{}", run.stderr);
    assert!(
        !p.path().join(".learntrac").exists(),
        "preflight renders nothing"
    );
    let run = p
        .cli(&[
            "bootstrap",
            "local",
            "--yes",
            "--trac-admin",
            "admin",
            "--password-stdin",
        ])
        .stdin(ADMIN_PASSWORD)
        .run();
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let secrets = p.secret_values().await;
    assert_no_secret(
        &secrets,
        "bootstrap's output",
        &(run.stdout.clone() + &run.stderr),
    );
    let again = p.cli(&["bootstrap", "local", "--yes", "-o", "json"]).run();
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        json(&again)["items"]
            .as_array()
            .is_some_and(|items| items.iter().all(|i| i["state"] == "present")),
        "the second bootstrap changed something: {}",
        again.stdout
    );
    assert_eq!(p.secret_values().await, secrets, "no secret replaced");

    // 2. A dry run plans the whole stack and changes nothing.
    let dry = p
        .cli(&[
            "deploy",
            "local",
            "--templates",
            "tmpl",
            "--dry-run",
            "-o",
            "json",
        ])
        .run();
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    let plan = json(&dry);
    assert_eq!(plan["dry_run"], true);
    assert!(plan["plan"]["add"].as_u64().unwrap_or(0) > 40, "{plan}");
    assert_eq!(plan["images"], Value::Array(vec![]), "nothing built");
    assert!(p.state().await.is_none(), "a dry run applies nothing");

    // 3. The first deploy: everything, in CI mode, with a JSON summary.
    let run = p
        .cli(&[
            "deploy",
            "local",
            "--templates",
            "tmpl",
            "--poll-ms",
            "300",
            "-o",
            "json",
        ])
        .run();
    assert_eq!(run.code, 0, "{}\n{}", run.stderr, run.stdout);
    let summary = json(&run);
    assert_eq!(summary["ok"], true);
    assert_eq!(summary["account"], "123456789012");
    assert_eq!(
        summary["path"]["path"], "full",
        "nothing applied yet: {}",
        summary["path"]
    );
    let mut phases: Vec<&str> = summary["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .filter_map(|p| p["phase"].as_str())
        .collect();
    // terraform init runs while the images build and push: either may finish first.
    phases[2..4].sort_unstable();
    assert_eq!(
        phases,
        [
            "preflight",
            "render",
            "build and push",
            "terraform init",
            "terraform plan",
            "terraform apply",
            "redeploy",
            "wait",
            "verify"
        ]
    );
    let mut digests = std::collections::BTreeMap::new();
    for image in summary["images"].as_array().expect("images") {
        let digest = image["push"]["digest"].as_str().expect("digest");
        assert!(digest.starts_with("sha256:"), "{image}");
        digests.insert(
            image["service"].as_str().expect("service").to_string(),
            format!("{}@{digest}", image["repository"].as_str().expect("repo")),
        );
    }
    assert_eq!(digests.len(), 2);
    for svc in summary["services"].as_array().expect("services") {
        let name = svc["service"].as_str().expect("service");
        assert_eq!(
            svc["task_definition"],
            format!("{}-{name}:1", p.prefix),
            "{svc}"
        );
        assert_eq!(svc["redeploy"], "new task definition");
        assert_eq!(svc["rollout"]["rollout_state"], "COMPLETED");
        assert_eq!(svc["image"].as_str(), digests.get(name).map(String::as_str));
    }
    let probes = summary["verify"]["probes"].as_array().expect("probes");
    assert!(
        probes.len() >= 5,
        "health paths, the front page and one per routing rule: {probes:?}"
    );
    assert!(
        probes
            .iter()
            .any(|p| p["path"] == "/" && p["service"] == "trac"),
        "the front page reaches Trac, the default: {probes:?}"
    );
    assert!(probes.iter().all(|p| p["ok"] == true), "{probes:?}");
    assert!(
        summary["verify"]["target_groups"]
            .as_array()
            .expect("target groups")
            .iter()
            .all(|g| g["healthy"] == 1)
    );
    assert_plain_lines(&run.stderr);
    for needle in [
        "[preflight] account 123456789012",
        "; Fargate vCPU peak 1 of quota 6",
        "Apply complete!",
        "[wait] every rollout COMPLETED",
        "[verify] learntrac: GET http://127.0.0.1:",
    ] {
        assert!(run.stderr.contains(needle), "{needle}:\n{}", run.stderr);
    }
    // Secrets: in no output, no rendered file or plan, not in Terraform's state.
    assert_no_secret(
        &secrets,
        "the deploy's output",
        &(run.stdout.clone() + &run.stderr),
    );
    let state_text = String::from_utf8(p.state().await.expect("the state in S3")).expect("utf-8");
    assert!(
        state_text.contains("aws_ecs_service"),
        "the S3 backend holds the state"
    );
    // The one secret the state holds, as docs/operations.md says: ElastiCache's AUTH token
    // has no write-only argument. Every other secret stays out.
    let redis_token = p.redis_token().await;
    assert!(
        state_text.contains(&redis_token),
        "the replication group takes the token bootstrap made ({} characters); the state's auth_token lines: {:?}",
        redis_token.len(),
        state_text
            .lines()
            .filter(|l| l.contains("auth_token"))
            .map(|l| l.chars().take(40).collect::<String>())
            .collect::<Vec<_>>()
    );
    let others: Vec<String> = secrets
        .iter()
        .filter(|s| **s != redis_token)
        .cloned()
        .collect();
    assert_no_secret(&others, "Terraform's state", &state_text);
    for file in common::files_under(&p.path().join(".learntrac"))
        .iter()
        .filter(|f| !f.contains(".terraform/"))
    {
        let text = std::fs::read(p.path().join(".learntrac").join(file)).unwrap_or_default();
        assert_no_secret(&secrets, file, &String::from_utf8_lossy(&text));
    }

    // The stack as AWS runs it: alarms that can publish, alarms for a total outage, health
    // checks ECS runs. Read back from the AWS endpoint, not from our own files.
    let key_id = moto_json(
        &p.moto,
        "sns",
        "",
        "Action=GetTopicAttributes&TopicArn=arn:aws:sns:us-east-2:123456789012:".to_string()
            + &p.prefix
            + "-alerts",
    )
    .await;
    let kms_key = between(&key_id, "<key>KmsMasterKeyId</key><value>", "</value>")
        .unwrap_or_else(|| panic!("the alerts topic is encrypted with a key: {key_id}"));
    assert!(
        kms_key.starts_with("arn:aws:kms:"),
        "a customer-managed key, not alias/aws/sns: {kms_key}"
    );
    let policy = moto_json(
        &p.moto,
        "kms",
        "TrentService.GetKeyPolicy",
        serde_json::json!({"KeyId": kms_key, "PolicyName": "default"}).to_string(),
    )
    .await;
    let policy: Value = serde_json::from_str(
        serde_json::from_str::<Value>(&policy).expect("GetKeyPolicy JSON")["Policy"]
            .as_str()
            .expect("a policy"),
    )
    .expect("policy JSON");
    assert!(
        policy["Statement"]
            .as_array()
            .expect("statements")
            .iter()
            .any(|st| {
                st["Principal"]["Service"] == "cloudwatch.amazonaws.com"
                    && st["Action"].as_array().is_some_and(|a| {
                        a.iter().any(|x| x == "kms:Decrypt")
                            && a.iter().any(|x| x == "kms:GenerateDataKey*")
                    })
            }),
        "CloudWatch may use the alerts key: {policy}"
    );
    let alarms = moto_json(
        &p.moto,
        "monitoring",
        "",
        "Action=DescribeAlarms&Version=2010-08-01&MaxRecords=100".to_string(),
    )
    .await;
    for name in [
        "trac-no-healthy-targets",
        "learntrac-no-healthy-targets",
        "elb-5xx",
    ] {
        assert!(
            alarms.contains(&format!("<AlarmName>{}-{name}</AlarmName>", p.prefix)),
            "alarm {name}: {alarms}"
        );
    }
    assert!(
        alarms.contains("<MetricName>HealthyHostCount</MetricName>")
            && alarms.contains("<TreatMissingData>breaching</TreatMissingData>")
            && alarms.contains("<MetricName>HTTPCode_ELB_5XX_Count</MetricName>"),
        "{alarms}"
    );
    let ecs = aws_sdk_ecs::Client::new(&sdk_config(&p.moto).await);
    for (svc, probe) in [
        ("trac", "socket.create_connection"),
        ("learntrac", "/usr/local/bin/learntrac-service"),
    ] {
        let td = ecs
            .describe_task_definition()
            .task_definition(format!("{}-{svc}", p.prefix))
            .send()
            .await
            .expect("describe task definition");
        let hc = td
            .task_definition()
            .and_then(|t| t.container_definitions().first())
            .and_then(|c| c.health_check())
            .unwrap_or_else(|| panic!("{svc}: a container health check"));
        assert!(
            hc.command().iter().any(|a| a.contains(probe)),
            "{svc}: {hc:?}"
        );
        assert_eq!(hc.start_period(), Some(60), "{svc}: the grace period");
    }
    // Trac's environment is on EFS: the task mounts the access point, over TLS, with IAM,
    // and Trac learns its public URL.
    let td = ecs
        .describe_task_definition()
        .task_definition(format!("{}-trac", p.prefix))
        .send()
        .await
        .expect("describe task definition");
    let td = td.task_definition().expect("trac's task definition");
    let efs = td
        .volumes()
        .iter()
        .find_map(|v| v.efs_volume_configuration())
        .unwrap_or_else(|| panic!("an EFS volume: {:?}", td.volumes()));
    assert_eq!(
        efs.transit_encryption().map(|t| t.as_str()),
        Some("ENABLED")
    );
    let auth = efs.authorization_config().expect("authorization config");
    assert!(
        auth.access_point_id()
            .is_some_and(|a| a.starts_with("fsap-")),
        "{auth:?}"
    );
    assert_eq!(auth.iam().map(|i| i.as_str()), Some("ENABLED"));
    let container = td.container_definitions().first().expect("container");
    assert!(
        container
            .mount_points()
            .iter()
            .any(|m| m.container_path() == Some("/var/trac/projects")),
        "{:?}",
        container.mount_points()
    );
    assert!(
        container
            .environment()
            .iter()
            .any(|e| e.name() == Some("TRAC_BASE_URL")
                && e.value() == Some(&format!("http://127.0.0.1:{probe}"))),
        "{:?}",
        container.environment()
    );

    // 4. status reads back what was deployed: task definitions and the pushed digests.
    let status = p.cli(&["status", "local", "-o", "json"]).run();
    assert_eq!(status.code, 0, "{}", status.stderr);
    let status = json(&status);
    assert!(
        status["last_apply"].is_i64(),
        "status says Terraform applied, so the next code-only deploy is fast: {}",
        status["last_apply"]
    );
    for svc in status["services"].as_array().expect("services") {
        let name = svc["service"].as_str().expect("service");
        let primary = svc["state"]["deployments"]
            .as_array()
            .expect("deployments")
            .iter()
            .find(|d| d["status"] == "PRIMARY")
            .expect("a PRIMARY deployment");
        assert_eq!(primary["task_definition"], format!("{}-{name}:1", p.prefix));
        assert_eq!(svc["image"].as_str(), digests.get(name).map(String::as_str));
    }

    // 5. A change to one service, deployed alone, as JSON lines: only it gets a new revision.
    // A one-line change to the service's code: its production Dockerfile recompiles the
    // service's crate on the dependency layer built before.
    let lib = p.path().join("learntrac-service/src/lib.rs");
    let text = std::fs::read_to_string(&lib).expect("lib.rs");
    // New to the engine (it keeps earlier runs' layers): the crate is really compiled.
    std::fs::write(&lib, format!("{text}\n// version 2 of {}\n", p.prefix)).expect("write");
    p.commit("second");
    let run = p
        .cli(&[
            "deploy",
            "local",
            "--templates",
            "tmpl",
            "--only",
            "learntrac",
            "--poll-ms",
            "300",
            "-o",
            "jsonl",
        ])
        .run();
    assert_eq!(run.code, 0, "{}\n{}", run.stderr, run.stdout);
    let lines: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("JSON line ({e}): {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|e| e["kind"] == "phase_finished" && e["phase"] == "wait"),
        "events stream"
    );
    let last = lines.last().expect("a summary line");
    assert_eq!(last["ok"], true);
    // Only an image changed: no Terraform at all.
    assert_eq!(last["path"]["path"], "fast", "{}", last["path"]);
    assert!(
        !run.stderr.contains("[terraform plan]"),
        "the fast path runs no terraform: {}",
        run.stderr
    );
    let services = last["services"].as_array().expect("services");
    assert_eq!(services.len(), 1);
    assert_eq!(services[0]["service"], "learntrac");
    assert_eq!(
        services[0]["task_definition"],
        format!("{}-learntrac:2", p.prefix)
    );
    let status = json(&p.cli(&["status", "local", "-o", "json"]).run());
    let trac = &status["services"][0];
    assert_eq!(trac["service"], "trac");
    assert_eq!(
        trac["image"].as_str(),
        digests.get("trac").map(String::as_str),
        "--only learntrac left trac's image alone"
    );
    for svc in status["services"].as_array().expect("services") {
        assert_eq!(svc["runs_latest"], true, "running = latest pushed: {svc}");
    }
    assert_eq!(
        status["services"][1]["image"]
            .as_str()
            .and_then(|i| i.split_once('@'))
            .map(|(_, d)| d),
        status["services"][1]["latest_pushed"].as_str()
    );

    // After a fast deploy Terraform has nothing to do: the images never pass through it.
    p.assert_plans_nothing("after a fast deploy");

    // 5b. rollback: never unconfirmed; the revision before, through the same wait and
    //     verify; a deploy of the other service leaves it where it was put; --to a commit.
    let running = |svc: usize| {
        let status = json(&p.cli(&["status", "local", "-o", "json"]).run());
        let s = &status["services"][svc];
        let primary = s["state"]["deployments"]
            .as_array()
            .and_then(|d| d.iter().find(|d| d["status"] == "PRIMARY").cloned())
            .unwrap_or(Value::Null);
        (
            primary["task_definition"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            s["image"].as_str().unwrap_or("").to_string(),
            s["runs_latest"].clone(),
        )
    };
    let learntrac_td = |n: u32| format!("{}-learntrac:{n}", p.prefix);
    // The fast path's revision carries the template's tags (the provider's default_tags):
    // read back from ECS, which returns them only when asked.
    let described = moto_json(
        &p.moto,
        "ecs",
        "AmazonEC2ContainerServiceV20141113.DescribeTaskDefinition",
        serde_json::json!({"taskDefinition": learntrac_td(2), "include": ["TAGS"]}).to_string(),
    )
    .await;
    let described: Value = serde_json::from_str(&described).expect("ECS's JSON");
    let tags = described["tags"].as_array().cloned().unwrap_or_default();
    for (key, value) in [("ManagedBy", "learntrac"), ("Environment", "local")] {
        assert!(
            tags.iter().any(|t| t["key"] == key && t["value"] == value),
            "{} lacks {key}={value}: {described}",
            learntrac_td(2)
        );
    }
    let run = p.cli(&["rollback", "local"]).run();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "learntrac  {} → {}",
            learntrac_td(2),
            learntrac_td(1)
        )) && run.stderr.contains("not confirmed"),
        "the list, then the refusal: {}",
        run.stderr
    );
    assert_eq!(running(1).0, learntrac_td(2), "nothing changed");
    let dry = json(
        &p.cli(&["rollback", "local", "--dry-run", "-o", "json"])
            .run(),
    );
    assert_eq!(dry["dry_run"], true, "{dry}");
    assert_eq!(
        dry["services"][0]["to"],
        Value::Null,
        "trac has nothing earlier"
    );
    assert!(
        dry["services"][0]["stays"]
            .as_str()
            .is_some_and(|w| w.contains("no revision")),
        "{dry}"
    );
    assert_eq!(dry["services"][1]["to"], learntrac_td(1), "{dry}");
    let run = p
        .cli(&[
            "rollback",
            "local",
            "--yes",
            "--poll-ms",
            "300",
            "-o",
            "json",
        ])
        .run();
    assert_eq!(run.code, 0, "{}\n{}", run.stderr, run.stdout);
    let back = json(&run);
    assert_eq!(back["services"][1]["rollout"]["rollout_state"], "COMPLETED");
    assert_eq!(
        back["services"][1]["rollout"]["task_definition"],
        learntrac_td(1)
    );
    assert!(
        back["verify"]["probes"]
            .as_array()
            .is_some_and(|p| !p.is_empty() && p.iter().all(|p| p["ok"] == true)),
        "verified as deploy verifies: {back}"
    );
    let (td, image, latest) = running(1);
    assert_eq!(td, learntrac_td(1));
    assert_eq!(
        Some(image.as_str()),
        digests.get("learntrac").map(String::as_str),
        "the first deploy's image runs again"
    );
    assert_eq!(latest, false, "status says it is not the latest push");
    let run = p.cli(&["rollback", "local", "--yes"]).run();
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("nothing to roll back to"),
        "{}",
        run.stderr
    );

    // The next deploy of trac alone knows what learntrac runs, and Terraform leaves it.
    let run = p
        .cli(&[
            "deploy",
            "local",
            "--templates",
            "tmpl",
            "--only",
            "trac",
            "--poll-ms",
            "300",
            "-o",
            "json",
        ])
        .run();
    assert_eq!(run.code, 0, "{}\n{}", run.stderr, run.stdout);
    let services = json(&run)["services"].clone();
    assert_eq!(
        services.as_array().map(Vec::len),
        Some(1),
        "only trac redeployed: {services}"
    );
    assert_eq!(running(1).0, learntrac_td(1), "the rollback stays");
    p.assert_plans_nothing("after a rollback and a deploy of the other service");

    // --to a commit: the newest revision that runs its images.
    let head = String::from_utf8(
        std::process::Command::new("git")
            .args([
                "-C",
                &p.path().to_string_lossy(),
                "rev-parse",
                "--short=9",
                "HEAD",
            ])
            .output()
            .expect("git")
            .stdout,
    )
    .expect("utf-8");
    let run = p
        .cli(&[
            "rollback",
            "local",
            "--only",
            "learntrac",
            "--to",
            head.trim(),
            "--yes",
            "--poll-ms",
            "300",
        ])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(running(1).0, learntrac_td(2), "{}", run.stderr);
    let run = p.cli(&["rollback", "local", "--to", "3", "--yes"]).run();
    assert_eq!(run.code, 2, "a revision needs --only: {}", run.stderr);

    // 5b. CI without compiling the CLI: learntrac's own image (this binary, terraform, the
    //     provider mirror), pushed to the environment's registry, plans the same stack from
    //     inside a container — the project mounted, the engine's socket passed in, its own
    //     terraformrc and mirror (the host's TF_CLI_CONFIG_FILE is not given to it).
    let stripped = p.path().join("learntrac-for-image");
    let ok = Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(env!("CARGO_BIN_EXE_learntrac"))
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        std::fs::copy(env!("CARGO_BIN_EXE_learntrac"), &stripped).expect("copy the binary");
    }
    let plugins = peer("LEARNTRAC_TF_PLUGIN_DIR", "the terraform provider mirror");
    let run = p
        .cli(&[
            "cli-image",
            "local",
            "--push",
            "-o",
            "json",
            "--plugin-dir",
            &plugins,
        ])
        .args([OsStr::new("--binary"), stripped.as_os_str()])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = json(&run);
    let image = format!(
        "{}:{}",
        report["repository"].as_str().expect("pushed"),
        report["tags"][0].as_str().expect("a tag")
    );
    assert_eq!(
        report["providers"][0],
        "registry.terraform.io/hashicorp/aws 5.100.0"
    );
    std::fs::remove_file(&stripped).expect("remove the binary copy");
    let out = Command::new("docker")
        .args([
            "run",
            "--rm",
            "--network",
            "host",
            "-v",
            "/var/run/docker.sock:/var/run/docker.sock",
            "-v",
        ])
        .arg(format!("{}:/work", p.path().display()))
        .args([
            "-e",
            "AWS_ACCESS_KEY_ID=testing",
            "-e",
            "AWS_SECRET_ACCESS_KEY=testing",
        ])
        .arg(&image)
        .args(["deploy", "local", "--dry-run", "--full", "-o", "json"])
        .output()
        .expect("docker run");
    let _ = Command::new("docker").args(["rmi", "-f", &image]).output();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let planned: Value = serde_json::from_str(&stdout).expect("the dry run's JSON");
    assert_eq!(
        planned["plan"]["changes"], false,
        "the image's terraform plans what the host's applied: {planned}"
    );

    // 6. A plan that destroys something (a routing rule removed) is not applied unasked.
    let yaml = p.path().join("environments/local.yaml");
    let text = std::fs::read_to_string(&yaml).expect("read");
    let rule = "  - priority: 95\n    service: learntrac\n    paths: [\"/api/chat/*\", \"/api/voice/*\"]\n";
    assert!(text.contains(rule), "the rule to remove");
    std::fs::write(&yaml, text.replace(rule, "")).expect("write");
    p.commit("drop a rule");
    let state_before = p.state().await;
    let run = p
        .cli(&["deploy", "local", "--templates", "tmpl", "--poll-ms", "300"])
        .run();
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("not applied: the plan destroys 1 resource(s)")
            && run
                .stderr
                .contains("module.alb.aws_lb_listener_rule.route[\"95\"]")
            && run.stderr.contains("pass --yes"),
        "{}",
        run.stderr
    );
    assert!(
        p.state().await == state_before,
        "nothing applied: the state is byte-identical"
    );
    let run = p
        .cli(&[
            "deploy",
            "local",
            "--templates",
            "tmpl",
            "--yes",
            "--poll-ms",
            "300",
        ])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("1 to destroy"), "{}", run.stdout);

    // 7. Logs: what the tasks wrote (put there through CloudWatch Logs, as the awslogs
    //    driver would), merged across services and tasks by time, each with its task id.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let written = [
        ("trac", "0a1b2c3d4e5f", "starting tracd on :8000", 1),
        ("learntrac", "9f8e7d6c5b4a", "listening on 0.0.0.0:8001", 2),
        ("trac", "0a1b2c3d4e5f", "GET /wiki/WikiStart 200", 3),
    ];
    for (svc, task, message, offset) in written {
        let group = format!("/ecs/{}-{svc}", p.prefix);
        let stream = format!("ecs/app/{task}");
        moto_json(
            &p.moto,
            "logs",
            "Logs_20140328.CreateLogStream",
            serde_json::json!({"logGroupName": group, "logStreamName": stream}).to_string(),
        )
        .await;
        let put = moto_json(
            &p.moto,
            "logs",
            "Logs_20140328.PutLogEvents",
            serde_json::json!({
                "logGroupName": group,
                "logStreamName": stream,
                "logEvents": [{"timestamp": now_ms - 60_000 + offset * 1000, "message": message}]
            })
            .to_string(),
        )
        .await;
        assert!(!put.contains("Exception"), "{put}");
    }
    let run = p.cli(&["logs", "local", "-o", "json"]).run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines = json(&run);
    let got: Vec<(String, String, String)> = lines
        .as_array()
        .expect("a list")
        .iter()
        .map(|l| {
            (
                l["service"].as_str().unwrap_or("").to_string(),
                l["task"].as_str().unwrap_or("").to_string(),
                l["message"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String, String)> = written
        .iter()
        .map(|(s, t, m, _)| (s.to_string(), t.to_string(), m.to_string()))
        .collect();
    assert_eq!(got, want, "both services, newest last");
    let run = p.cli(&["logs", "local", "trac", "--task", "0a1b"]).run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("trac      0a1b2c3d GET /wiki/WikiStart 200")
            && !run.stdout.contains("listening"),
        "{}",
        run.stdout
    );
    let run = p.cli(&["logs", "local", "--since", "10s"]).run();
    assert!(
        !run.stdout.contains("starting tracd"),
        "--since leaves older lines out: {}",
        run.stdout
    );

    // 8. destroy: never unconfirmed; then everything but the ECR repositories (and the
    //    secrets, never Terraform's) goes, and a later deploy adopts the repositories.
    let state_before = p.state().await;
    let run = p.cli(&["destroy", "local", "--templates", "tmpl"]).run();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("not confirmed") && run.stderr.contains("aws_ecs_service"),
        "the list, then the refusal: {}",
        run.stderr
    );
    // With --secrets, every parameter that would go is named before anyone confirms
    // (bootstrap's and any set by hand), values never.
    let run = p
        .cli(&["destroy", "local", "--templates", "tmpl", "--secrets"])
        .run();
    assert_eq!(run.code, 2, "{}", run.stderr);
    let project = p.prefix.trim_end_matches("-local");
    let redis_token = p.redis_token().await;
    assert!(
        run.stderr
            .contains(&format!("SSM parameter /{project}/local/redis/auth-token"))
            && !run.stderr.contains(&redis_token),
        "{}",
        run.stderr
    );
    assert!(
        p.state().await == state_before,
        "nothing changed: the state is byte-identical"
    );
    let run = p
        .cli(&[
            "destroy",
            "local",
            "--templates",
            "tmpl",
            "--yes",
            "-o",
            "json",
        ])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let summary = json(&run);
    let destroyed = summary["destroyed"].to_string();
    for kind in [
        "aws_ecs_service",
        "aws_lb.main",
        "aws_db_instance",
        "aws_elasticache_replication_group",
    ] {
        assert!(destroyed.contains(kind), "{kind} destroyed: {destroyed}");
    }
    assert!(!destroyed.contains("aws_ecr_repository"), "{destroyed}");
    let remaining = summary["remaining"].to_string();
    assert!(
        remaining.contains("ECR repositories") && remaining.contains("SSM parameters"),
        "{remaining}"
    );
    let services = moto_json(
        &p.moto,
        "ecs",
        "AmazonEC2ContainerServiceV20141113.DescribeServices",
        format!(
            "{{\"cluster\": \"{0}-cluster\", \"services\": [\"{0}-trac\", \"{0}-learntrac\"]}}",
            p.prefix
        ),
    )
    .await;
    assert!(
        !services.contains("\"ACTIVE\""),
        "no ECS service left: {services}"
    );
    // No revision of the stack stays runnable: rollback could otherwise pick one whose
    // roles and file system are gone.
    for family in ["trac", "learntrac", "trac-template", "learntrac-template"] {
        let active = moto_json(
            &p.moto,
            "ecs",
            "AmazonEC2ContainerServiceV20141113.ListTaskDefinitions",
            format!(
                "{{\"familyPrefix\": \"{}-{family}\", \"status\": \"ACTIVE\"}}",
                p.prefix
            ),
        )
        .await;
        let active: Value = serde_json::from_str(&active).expect("ECS's JSON");
        let arns: Vec<&str> = active["taskDefinitionArns"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|a| a.contains(&format!("/{}-{family}:", p.prefix)))
            .collect();
        assert!(arns.is_empty(), "{family}: {arns:?}");
    }
    for (service, query, name) in [
        (
            "elasticloadbalancing",
            "Action=DescribeLoadBalancers&Version=2015-12-01",
            format!("{}-alb", p.prefix),
        ),
        (
            "rds",
            "Action=DescribeDBInstances&Version=2014-10-31",
            format!("{}-db", p.prefix),
        ),
        (
            "elasticache",
            "Action=DescribeReplicationGroups&Version=2015-02-02",
            p.prefix.clone(),
        ),
    ] {
        let listing = moto_json(&p.moto, service, "", query.to_string()).await;
        assert!(
            !listing.contains(&name),
            "{name} left in {service}: {listing}"
        );
    }
    let repos = moto_json(
        &p.moto,
        "ecr",
        "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories",
        "{}".into(),
    )
    .await;
    assert!(
        repos.contains(&format!("{}-trac", p.prefix)),
        "kept: {repos}"
    );
    let run = p
        .cli(&[
            "deploy",
            "local",
            "--templates",
            "tmpl",
            "--yes",
            "--poll-ms",
            "300",
        ])
        .run();
    assert_eq!(
        run.code, 0,
        "a deploy after destroy adopts the kept repositories: {}",
        run.stderr
    );
    stop.store(true, Ordering::SeqCst);
}

#[test]
fn destroying_production_needs_allow_production() {
    let p = common::Project::new();
    let run = Cli::new()
        .root(p.path())
        .args(["destroy", "prod", "--yes"])
        .run();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--allow-production"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn preflight_stops_where_tasks_without_public_ips_could_not_pull() {
    let moto = peer("LEARNTRAC_TEST_MOTO", "moto (the AWS endpoint)");
    let ec2 = |params: String| moto_json(&moto, "ec2", "", format!("Version=2016-11-15&{params}"));
    // A VPC like a school's: a private subnet whose route table has no way out.
    let vpc = ec2("Action=CreateVpc&CidrBlock=10.77.0.0/16".into()).await;
    let vpc = between(&vpc, "<vpcId>", "</vpcId>")
        .expect("vpc id")
        .to_string();
    let subnet = ec2(format!(
        "Action=CreateSubnet&VpcId={vpc}&CidrBlock=10.77.1.0/24&AvailabilityZone=us-east-2a"
    ))
    .await;
    let subnet = between(&subnet, "<subnetId>", "</subnetId>")
        .expect("subnet id")
        .to_string();
    let p = DeployProject::new(&moto, 1);
    let yaml = p.path().join("environments/local.yaml");
    let text = std::fs::read_to_string(&yaml).expect("read");
    std::fs::write(
        &yaml,
        text.replace("  vpc: default\n", &format!("  vpc: {vpc}\n"))
            .replace("  assign_public_ip: true\n", "  assign_public_ip: false\n"),
    )
    .expect("write");
    p.commit("private subnets");

    let run = p.cli(&["deploy", "local", "--templates", "tmpl"]).run();
    assert_eq!(run.code, 3, "{}", run.stderr);
    for want in [
        &format!("subnet {subnet} of {vpc} route nothing to a NAT gateway"),
        "com.amazonaws.us-east-2.ecr.api, com.amazonaws.us-east-2.ecr.dkr, com.amazonaws.us-east-2.s3, com.amazonaws.us-east-2.logs, com.amazonaws.us-east-2.ssm",
        "fix: route 0.0.0.0/0 of those subnets to a NAT gateway",
        // A new VPC has DNS hostnames off (as AWS makes it): EFS mounts by name need them.
        &format!("the VPC {vpc} has enableDnsHostnames off"),
        &format!("fix: aws ec2 modify-vpc-attribute --vpc-id {vpc} --enable-dns-hostnames"),
        "nothing was changed",
    ] {
        assert!(run.stderr.contains(want), "{want}:\n{}", run.stderr);
    }

    // Endpoints that would not serve the tasks: interface endpoints with private DNS off
    // (the tasks would still dial the public names) count as missing; S3's gateway serves.
    let tables = ec2(format!(
        "Action=DescribeRouteTables&Filter.1.Name=vpc-id&Filter.1.Value.1={vpc}"
    ))
    .await;
    let table = between(&tables, "<routeTableId>", "</routeTableId>")
        .expect("route table")
        .to_string();
    for svc in ["ecr.api", "ecr.dkr", "logs", "ssm"] {
        let made = ec2(format!(
            "Action=CreateVpcEndpoint&VpcId={vpc}&VpcEndpointType=Interface&ServiceName=com.amazonaws.us-east-2.{svc}&SubnetId.1={subnet}&PrivateDnsEnabled=false"
        ))
        .await;
        assert!(made.contains("<vpcEndpointId>"), "{made}");
    }
    let made = ec2(format!(
        "Action=CreateVpcEndpoint&VpcId={vpc}&VpcEndpointType=Gateway&ServiceName=com.amazonaws.us-east-2.s3&RouteTableId.1={table}"
    ))
    .await;
    assert!(made.contains("<vpcEndpointId>"), "{made}");
    let run = p.cli(&["deploy", "local", "--templates", "tmpl"]).run();
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("the endpoints tasks would need instead: com.amazonaws.us-east-2.ecr.api, com.amazonaws.us-east-2.ecr.dkr, com.amazonaws.us-east-2.logs, com.amazonaws.us-east-2.ssm —"),
        "private DNS off counts as missing, S3's gateway serves:\n{}",
        run.stderr
    );

    // With a NAT gateway on the subnet's route table, the network is no longer a problem.
    let eip = ec2("Action=AllocateAddress&Domain=vpc".into()).await;
    let eip = between(&eip, "<allocationId>", "</allocationId>").expect("allocation id");
    let nat = ec2(format!(
        "Action=CreateNatGateway&SubnetId={subnet}&AllocationId={eip}"
    ))
    .await;
    let nat = between(&nat, "<natGatewayId>", "</natGatewayId>").expect("nat id");
    let route = ec2(format!(
        "Action=CreateRoute&RouteTableId={table}&DestinationCidrBlock=0.0.0.0/0&NatGatewayId={nat}"
    ))
    .await;
    assert!(route.contains("<return>true</return>"), "{route}");
    let dns = ec2(format!(
        "Action=ModifyVpcAttribute&VpcId={vpc}&EnableDnsHostnames.Value=true"
    ))
    .await;
    assert!(dns.contains("<ModifyVpcAttributeResponse"), "{dns}");
    let run = p.cli(&["deploy", "local", "--templates", "tmpl"]).run();
    assert_eq!(run.code, 3, "the secrets are still missing: {}", run.stderr);
    assert!(
        !run.stderr.contains("NAT gateway") && !run.stderr.contains("enableDns"),
        "the network is fine now:\n{}",
        run.stderr
    );
}

#[test]
fn preflight_reports_a_missing_terraform_and_docker_with_their_fixes() {
    let moto = peer("LEARNTRAC_TEST_MOTO", "moto (the AWS endpoint)");
    let p = DeployProject::new(&moto, 1);
    let run = p
        .cli(&["deploy", "local", "--templates", "tmpl"])
        .env("PATH", "/nonexistent")
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .run();
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("neither terraform nor tofu is on PATH"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("LEARNTRAC_TERRAFORM"), "{}", run.stderr);
    assert!(run.stderr.contains("Docker Engine"), "{}", run.stderr);
    assert!(!p.path().join(".learntrac").exists(), "no side effect");
}

#[test]
fn preflight_refuses_credentials_of_another_account() {
    let moto = peer("LEARNTRAC_TEST_MOTO", "moto (the AWS endpoint)");
    let p = DeployProject::new(&moto, 1);
    let yaml = p.path().join("environments/local.yaml");
    let text = std::fs::read_to_string(&yaml).expect("read");
    std::fs::write(
        &yaml,
        text.replace(
            "account_id: \"123456789012\"",
            "account_id: \"999999999999\"",
        ),
    )
    .expect("write");
    let run = p.cli(&["deploy", "local", "--templates", "tmpl"]).run();
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "the AWS credentials belong to account 123456789012 (arn:aws:sts::123456789012:user/moto), but local deploys to account 999999999999"
        ),
        "{}",
        run.stderr
    );
    // Rollback and destroy ask the same, before they touch anything (destroy before
    // Terraform, which would refuse only once it runs).
    for args in [
        &["rollback", "local", "--yes"][..],
        &["destroy", "local", "--templates", "tmpl", "--yes"][..],
    ] {
        let run = p.cli(args).run();
        assert_eq!(run.code, 3, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr
                .contains("but local deploys to account 999999999999"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("terraform init"), "{}", run.stderr);
    }
}

/// A rollout still going (moto: 1 task running of 2 desired) blocks a deploy unless --force.
#[tokio::test(flavor = "multi_thread")]
async fn preflight_refuses_while_a_deployment_is_in_progress() {
    let moto = peer("LEARNTRAC_TEST_MOTO", "moto (the AWS endpoint)");
    let p = DeployProject::new(&moto, 1);
    let config = sdk_config(&moto).await;
    let ecs = aws_sdk_ecs::Client::new(&config);
    let cluster = format!("{}-cluster", p.prefix);
    ecs.create_cluster()
        .cluster_name(&cluster)
        .send()
        .await
        .expect("cluster");
    let td = ecs
        .register_task_definition()
        .family(format!("{}-learntrac", p.prefix))
        .container_definitions(
            aws_sdk_ecs::types::ContainerDefinition::builder()
                .name("app")
                .image("busybox")
                .memory(128)
                .build(),
        )
        .send()
        .await
        .expect("task definition");
    ecs.create_service()
        .cluster(&cluster)
        .service_name(format!("{}-learntrac", p.prefix))
        .task_definition(
            td.task_definition()
                .and_then(|t| t.task_definition_arn())
                .expect("arn"),
        )
        .desired_count(2)
        .send()
        .await
        .expect("service");
    let run = p
        .cli(&[
            "deploy",
            "local",
            "--templates",
            "tmpl",
            "--only",
            "learntrac",
        ])
        .run();
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "a deployment of {}-learntrac is still in progress",
            p.prefix
        )),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("or pass --force"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn preflight_refuses_a_certificate_the_load_balancer_could_not_use() {
    let moto = peer("LEARNTRAC_TEST_MOTO", "moto (the AWS endpoint)");
    let p = DeployProject::new(&moto, 1);
    let yaml = p.path().join("environments/local.yaml");
    let set_tls = |arn: &str, url: &str| {
        let text = std::fs::read_to_string(&yaml).expect("read");
        let text: String = text
            .lines()
            .filter(|l| !l.starts_with("tls:") && !l.starts_with("  certificate_arn:"))
            .map(|l| {
                if l.starts_with("  public_url:") {
                    format!("  public_url: {url}\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        std::fs::write(&yaml, format!("{text}tls:\n  certificate_arn: {arn}\n")).expect("write");
    };
    let deploy = || p.cli(&["deploy", "local", "--dry-run"]).run();

    // None in the stack's region (as for one made in us-east-1 for CloudFront).
    let absent =
        "arn:aws:acm:us-east-2:123456789012:certificate/00000000-0000-0000-0000-00000000beef";
    set_tls(absent, "https://learn.school.example");
    let run = deploy();
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("ACM in us-east-2 has no certificate {absent}")),
        "{}",
        run.stderr
    );

    // An issued certificate for another name.
    let dir = tempfile::tempdir().expect("temp dir");
    let ok = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=other.school.example"])
        .args(["-addext", "subjectAltName=DNS:other.school.example"])
        .arg("-keyout")
        .arg(dir.path().join("key.pem"))
        .arg("-out")
        .arg(dir.path().join("cert.pem"))
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok, "openssl");
    use base64::Engine;
    let b64 = |f: &str| {
        base64::engine::general_purpose::STANDARD
            .encode(std::fs::read(dir.path().join(f)).expect("read pem"))
    };
    let imported = moto_json(
        &moto,
        "acm",
        "CertificateManager.ImportCertificate",
        serde_json::json!({"Certificate": b64("cert.pem"), "PrivateKey": b64("key.pem")})
            .to_string(),
    )
    .await;
    let imported: Value = serde_json::from_str(&imported).expect("ACM's JSON");
    let arn = imported["CertificateArn"]
        .as_str()
        .unwrap_or_else(|| panic!("{imported}"))
        .to_string();
    set_tls(&arn, "https://learn.school.example");
    let run = deploy();
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "the certificate {arn} names other.school.example, not learn.school.example"
        )),
        "{}",
        run.stderr
    );

    // The name it covers: no word about the certificate.
    set_tls(&arn, "https://other.school.example");
    let run = deploy();
    assert!(!run.stderr.contains("certificate"), "{}", run.stderr);
}

/// A new account's Fargate quota below what a rollout holds stops preflight, with the
/// Service Quotas request that fixes it (moto serves the quota; the account's value is
/// the one thing this test chooses). At AWS's default of 6 the same deploy passes and says
/// nothing is said against it.
#[test]
fn preflight_refuses_a_fargate_quota_below_the_rollouts_peak() {
    let small = Moto::start_with(&[("LEARNTRAC_MOTO_FARGATE_VCPU", "0.5")]);
    let p = DeployProject::new(&small.url, 1);
    let run = p.cli(&["deploy", "local", "--dry-run"]).run();
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "the account's Fargate vCPU quota in us-east-2 is 0.5, and a rollout of local holds 1"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("--service-code fargate --quota-code L-3032A538 --desired-value 1"),
        "{}",
        run.stderr
    );
    // At AWS's default quota, 6, nothing is said against it (the full deploy test reads
    // "Fargate vCPU peak 1 of quota 6" on its preflight line).
    let moto = peer("LEARNTRAC_TEST_MOTO", "moto (the AWS endpoint)");
    let p = DeployProject::new(&moto, 1);
    let run = p.cli(&["deploy", "local", "--dry-run"]).run();
    assert!(
        !run.stderr.contains("Fargate vCPU quota in"),
        "{}",
        run.stderr
    );
}
