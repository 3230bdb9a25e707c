//! The service's production image, started as ECS starts it. scripts/test builds it once
//! per run through `learntrac build` from the rendered production Dockerfile, with only its
//! two bases swapped for stand-ins (the engine here cannot pull) and the RDS CA bundle
//! fetched from the test CA's URL. Here it runs with the task definition's variables
//! (`learntrac config show`), its secrets as variables (as ECS injects SSM `valueFrom`), its
//! image's numeric user and a read-only root filesystem (as the task definition sets), on
//! the RDS-like PostgreSQL that refuses anything but verified TLS.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::fake_model::sse_events;
use common::{TOKEN_SECRET, TracEnv, standard_seed};
use serde_json::{Value, json};

/// The AUTH token the test's Redis demands (ElastiCache's, made by bootstrap in AWS).
const REDIS_AUTH_TOKEN: &str = "image-test-redis-auth-token-0123";

fn peer(var: &str, what: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{what} is required: set {var} (scripts/test builds it; or run under scripts/with-peers after it)")
    })
}

fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A certificate for 127.0.0.1 signed by the CA at `ca` (PEM; its key beside it as .key or
/// given), in `dir`: returns (certificate, key) paths.
fn server_certificate(
    dir: &std::path::Path,
    name: &str,
    ca: &str,
    ca_key: &str,
) -> (String, String) {
    let key = dir.join(format!("{name}.key"));
    let csr = dir.join(format!("{name}.csr"));
    let crt = dir.join(format!("{name}.crt"));
    let ext = dir.join(format!("{name}.ext"));
    std::fs::write(&ext, "subjectAltName=IP:127.0.0.1\n").expect("ext");
    let ok = Command::new("openssl")
        .args(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=model"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&csr)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
        && Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
            .arg("-in")
            .arg(&csr)
            .args(["-CA", ca, "-CAkey", ca_key])
            .arg("-extfile")
            .arg(&ext)
            .arg("-out")
            .arg(&crt)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    assert!(ok, "openssl could not make the {name} certificate");
    (
        crt.to_string_lossy().into_owned(),
        key.to_string_lossy().into_owned(),
    )
}

/// The HTTPS model double (https_model.py) with this certificate; returns it and its port.
fn https_model(cert: &str, key: &str) -> (std::process::Child, u16) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/https_model.py");
    let mut child = Command::new("python3")
        .arg(script)
        .args([cert, key])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the model's port");
    (child, line.trim().parse().expect("a port"))
}

struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", "-v", &self.0]);
    }
}

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// (user, password, host, port) of the test PostgreSQL's admin URL.
fn pg_parts(url: &str) -> (String, String, String, String) {
    let rest = url.strip_prefix("postgres://").expect("a postgres:// URL");
    let (auth, rest) = rest.split_once('@').expect("credentials in the URL");
    let (user, password) = auth.split_once(':').expect("user:password");
    let hostport = rest.split('/').next().expect("host:port");
    let (host, port) = hostport.rsplit_once(':').expect("host:port");
    (user.into(), password.into(), host.into(), port.into())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_production_image_serves_as_ecs_starts_it_and_reaches_its_model_over_verified_https() {
    let image = peer(
        "LEARNTRAC_TEST_SERVICE_IMAGE",
        "the service's production image",
    );
    let config: Value = serde_json::from_str(
        &std::fs::read_to_string(peer(
            "LEARNTRAC_TEST_SERVICE_CONFIG",
            "`learntrac config show -o json` of the image's environment",
        ))
        .expect("read the configuration"),
    )
    .expect("JSON");
    let public_ca = peer("LEARNTRAC_TEST_PUBLIC_CA", "the public-root stand-in CA");
    let public_key = peer("LEARNTRAC_TEST_PUBLIC_CA_KEY", "its key");
    let other_ca = peer("LEARNTRAC_TEST_OTHER_CA", "a CA nothing trusts");
    let other_key = other_ca.replace(".pem", ".key");

    // The image as built: a numeric user, its own health check, the engines voice needs.
    let inspect: Value = serde_json::from_slice(&docker(&["image", "inspect", &image]).stdout)
        .expect("docker image inspect");
    let cfg = &inspect[0]["Config"];
    assert_eq!(cfg["User"], "10001:10001", "{cfg}");
    let healthcheck: Vec<String> = cfg["Healthcheck"]["Test"]
        .as_array()
        .expect("a HEALTHCHECK")
        .iter()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    assert_eq!(healthcheck[0], "CMD", "{healthcheck:?}");

    // Two model endpoints: one whose certificate chains to a root in the image's bundle,
    // one signed by a CA the image does not carry.
    let certs = tempfile::tempdir().expect("temp dir");
    let (good_crt, good_key) = server_certificate(certs.path(), "good", &public_ca, &public_key);
    let (bad_crt, bad_key) = server_certificate(certs.path(), "bad", &other_ca, &other_key);
    let (good, good_port) = https_model(&good_crt, &good_key);
    let _good = Killed(good);
    let (bad, bad_port) = https_model(&bad_crt, &bad_key);
    let _bad = Killed(bad);

    let env = TracEnv::postgres().await;
    standard_seed(&env);
    let database = env
        .database_url
        .split('?')
        .next()
        .and_then(|u| u.rsplit('/').next())
        .expect("the database's name")
        .to_string();
    let (user, password, host, pg_port) = pg_parts(&env.database_url);

    // 1. The db-roles container, as each task runs it before its app: the task
    //    definition's variables for it (the master user; here the test database's admin),
    //    the master password and both roles' passwords as secrets, a read-only root.
    let tag = std::process::id();
    let (trac_role, svc_role) = (format!("trac_img_{tag}"), format!("svc_img_{tag}"));
    let service_password = "image test: service's own p@ss";
    let roles = &config["derived"]["db_roles"];
    let mut args: Vec<String> = ["run", "--rm", "--network", "host", "--read-only"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut role_vars: Vec<(String, String)> = roles["environment"]
        .as_object()
        .expect("db-roles variables")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    assert!(
        role_vars
            .iter()
            .any(|(k, v)| k == "DATABASE_SSLMODE" && v == "verify-full"),
        "{role_vars:?}"
    );
    let secrets: Vec<&String> = roles["secrets"]
        .as_object()
        .expect("secrets")
        .keys()
        .collect();
    assert_eq!(
        secrets,
        [
            "DATABASE_PASSWORD",
            "SERVICE_DB_PASSWORD",
            "TRAC_DB_PASSWORD"
        ],
        "{roles}"
    );
    for (k, v) in [
        ("DATABASE_HOST", host.as_str()),
        ("DATABASE_PORT", pg_port.as_str()),
        ("DATABASE_NAME", database.as_str()),
        ("DATABASE_USER", user.as_str()),
        ("DATABASE_PASSWORD", password.as_str()),
        ("TRAC_DB_USER", trac_role.as_str()),
        ("TRAC_DB_PASSWORD", "trac's own"),
        ("SERVICE_DB_USER", svc_role.as_str()),
        ("SERVICE_DB_PASSWORD", service_password),
    ] {
        role_vars.retain(|(key, _)| key != k);
        role_vars.push((k.into(), v.into()));
    }
    for (k, v) in &role_vars {
        args.push("-e".into());
        args.push(format!("{k}={v}"));
    }
    // The task definition's `command`, after the image's entrypoint (the service).
    args.extend([image.clone(), "db-roles".into()]);
    let out = docker(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "db-roles: {said}");
    assert!(
        said.contains(&format!(
            "{trac_role} and {svc_role} ready (created {trac_role}, {svc_role})"
        )),
        "{said}"
    );
    assert!(!said.contains(service_password), "{said}");

    // ElastiCache with AUTH, as the stack makes it: the token comes as a secret of its own.
    let redis = common::PrivateRedis::start_with(&["--requirepass", REDIS_AUTH_TOKEN]);
    let start = |name: &str, model_port: u16| -> (Container, String) {
        let port = free_port();
        // The task definition's variables: the YAML's and those learntrac wires, with the
        // values Terraform would fill in taken from the test peers. The user is the
        // database's admin, as DATABASE_USER is RDS's master user in the task definition.
        let mut vars: Vec<(String, String)> = Vec::new();
        for source in [
            &config["services"]["learntrac"]["environment"],
            &config["derived"]["wiring"]["learntrac"]["environment"],
        ] {
            for (k, v) in source.as_object().expect("variables") {
                vars.push((k.clone(), v.as_str().unwrap_or_default().to_string()));
            }
        }
        let set = |vars: &mut Vec<(String, String)>, k: &str, v: &str| {
            vars.retain(|(key, _)| key != k);
            vars.push((k.to_string(), v.to_string()));
        };
        set(&mut vars, "DATABASE_HOST", &host);
        set(&mut vars, "DATABASE_PORT", &pg_port);
        set(&mut vars, "DATABASE_NAME", &database);
        // The app logs in as the service's own role.
        assert_eq!(
            vars.iter()
                .find(|(k, _)| k == "DATABASE_USER")
                .map(|(_, v)| v.as_str()),
            Some("learntrac_service"),
            "the task definition's DATABASE_USER"
        );
        set(&mut vars, "DATABASE_USER", &svc_role);
        set(&mut vars, "REDIS_URL", &redis.url);
        // Host networking (to reach the loopback peers): the port must be free here.
        set(&mut vars, "PORT", &port.to_string());
        set(
            &mut vars,
            "CHAT_BASE_URL",
            &format!("https://127.0.0.1:{model_port}/v1"),
        );
        set(&mut vars, "CHAT_MODEL", "tutor-model");
        // Secrets, as ECS injects them from SSM.
        let secrets = config["derived"]["wiring"]["learntrac"]["secrets"]
            .as_object()
            .expect("secrets");
        assert!(secrets.contains_key("DATABASE_PASSWORD"), "{secrets:?}");
        assert!(
            secrets.contains_key("LEARNTRAC_TOKEN_SECRET"),
            "{secrets:?}"
        );
        set(&mut vars, "DATABASE_PASSWORD", service_password);
        set(&mut vars, "LEARNTRAC_TOKEN_SECRET", TOKEN_SECRET);
        assert!(secrets.contains_key("REDIS_AUTH_TOKEN"), "{secrets:?}");
        set(&mut vars, "REDIS_AUTH_TOKEN", REDIS_AUTH_TOKEN);
        assert!(
            vars.iter()
                .any(|(k, v)| k == "DATABASE_SSLMODE" && v == "verify-full"),
            "{vars:?}"
        );
        let container = format!("lt-image-{name}-{}", std::process::id());
        let mut args: Vec<String> = [
            "run",
            "-d",
            "--name",
            &container,
            "--network",
            "host",
            // As the task definition: a read-only root, and /tmp on the task's own
            // storage (a volume takes the image's /tmp and its mode, as Fargate's does).
            "--read-only",
            "--mount",
            "type=volume,dst=/tmp",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for (k, v) in &vars {
            args.push("-e".into());
            args.push(format!("{k}={v}"));
        }
        args.push(image.clone());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = docker(&args);
        assert!(
            out.status.success(),
            "docker run: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (Container(container), format!("http://127.0.0.1:{port}"))
    };

    let (container, base) = start("good", good_port);
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let health: Value = loop {
        if let Ok(r) = client
            .get(format!("{base}/api/LearnTrac/health"))
            .send()
            .await
            && r.status() == 200
        {
            break r.json().await.expect("health JSON");
        }
        if Instant::now() > deadline {
            let logs = docker(&["logs", &container.0]);
            panic!(
                "the image did not serve health within 60 s:\n{}{}",
                String::from_utf8_lossy(&logs.stdout),
                String::from_utf8_lossy(&logs.stderr)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(health["status"], "healthy", "{health}");
    // The deep check: TLS PostgreSQL, and Redis with AUTH.
    let deep: Value = client
        .get(format!("{base}/health"))
        .send()
        .await
        .expect("deep health")
        .json()
        .await
        .expect("deep health JSON");
    assert_eq!(deep["status"], "healthy", "{deep}");
    assert_eq!(
        deep["checks"]["cache"]["status"], "up",
        "Redis with AUTH: {deep}"
    );
    assert_eq!(health["features"]["chat"], "enabled", "{health}");
    assert_eq!(
        health["features"]["voice"], "enabled",
        "VOICE_ENGINE=auto in an image that carries the engines: {health}"
    );

    // Its own HEALTHCHECK command, inside the container, as the image's user.
    let mut exec = vec!["exec", &container.0];
    exec.extend(healthcheck[1..].iter().map(String::as_str));
    let out = docker(&exec);
    assert!(
        out.status.success(),
        "HEALTHCHECK {healthcheck:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let whoami = docker(&["exec", &container.0, "id", "-u"]);
    assert_eq!(String::from_utf8_lossy(&whoami.stdout).trim(), "10001");
    // The voice engines are in the image and can write where the service keeps their
    // files, as its user, with the root read-only.
    let spoken = docker(&[
        "exec",
        &container.0,
        "espeak-ng",
        "-w",
        "/tmp/probe.wav",
        "start by isolating the variable",
    ]);
    assert!(
        spoken.status.success(),
        "espeak-ng in the image: {}",
        String::from_utf8_lossy(&spoken.stderr)
    );
    let heard = docker(&[
        "exec",
        &container.0,
        "sh",
        "-c",
        "command -v pocketsphinx_continuous && test -f /usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict && awk '$2 == \"/\" {print $4}' /proc/mounts | grep -q '^ro'",
    ]);
    assert!(
        heard.status.success(),
        "PocketSphinx and its model in the image, the root read-only: {}",
        String::from_utf8_lossy(&heard.stdout)
    );

    // A student's question reaches the model over HTTPS verified against the image's roots.
    let token = learntrac_service::auth::issue_token(TOKEN_SECRET, "alice", 600).expect("token");
    let ask = |base: String| {
        let client = client.clone();
        let token = token.clone();
        async move {
            let resp = client
                .post(format!("{base}/api/chat/concepts/2/messages"))
                .bearer_auth(token)
                .json(&json!({"message": "How do I start?"}))
                .send()
                .await
                .expect("ask");
            let status = resp.status().as_u16();
            (status, resp.text().await.expect("body"))
        }
    };
    let (status, body) = ask(base.clone()).await;
    assert_eq!(status, 200, "{body}");
    let answer: String = sse_events(&body)
        .iter()
        .filter(|(n, _)| n == "delta")
        .filter_map(|(_, d)| d["text"].as_str().map(String::from))
        .collect();
    assert_eq!(answer, "Start by isolating the variable.", "{body}");
    drop(container);

    // A model whose certificate chains to no root in the image is refused: the student
    // gets an error event, the model never sees the request.
    let (container, base) = start("bad", bad_port);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !client
        .get(format!("{base}/api/LearnTrac/health"))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(
            Instant::now() < deadline,
            "the second container did not start"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, body) = ask(base).await;
    let events = sse_events(&body);
    assert!(
        status != 200 || events.iter().any(|(n, _)| n == "error"),
        "an unverifiable model must fail the answer: {status} {body}"
    );
    assert!(
        !events.iter().any(|(n, _)| n == "delta"),
        "no answer through an unverified connection: {body}"
    );
    assert!(
        std::fs::read_to_string(format!("{bad_crt}.requests")).is_err(),
        "the unverified model received a request"
    );
    drop(container);
}
