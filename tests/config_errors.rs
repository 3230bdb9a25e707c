//! Bad input gets a precise error and exit code 2: one test per kind of mistake.

mod common;

use common::{Cli, Project};

fn validate(project: &Project, env: &str) -> common::Run {
    Cli::new()
        .root(project.path())
        .args(["config", "validate", env])
        .run()
}

/// `file:line:col: key: message` for `env` in `project`.
fn located(project: &Project, env: &str, line: usize, col: usize, key: &str) -> String {
    format!("{}:{line}:{col}: {key}: ", project.env_file(env).display())
}

#[test]
fn repository_environments_are_valid() {
    let run = Cli::new().args(["config", "validate"]).run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "ok     dev\nok     local\nok     prod\n");
}

#[test]
fn unknown_key() {
    let p = Project::new();
    p.edit(
        "dev",
        "    port: 8001\n",
        "    port: 8001\n    colour: blue\n",
    );
    let line = p.line_of("dev", "colour: blue");
    let run = validate(&p, "dev");
    assert_eq!(run.code, 2);
    let want = located(&p, "dev", line, 5, "services.learntrac.colour");
    assert!(
        run.stderr
            .contains(&format!("{want}unknown field `colour`")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("expected: one of `context`, `port`"),
        "{}",
        run.stderr
    );
}

#[test]
fn unknown_top_level_section() {
    let p = Project::new();
    p.edit("dev", "monitoring:\n", "monitorin:\n");
    let line = p.line_of("dev", "monitorin:");
    let run = validate(&p, "dev");
    assert_eq!(run.code, 2);
    let want = located(&p, "dev", line, 1, "monitorin");
    assert!(
        run.stderr
            .contains(&format!("{want}unknown key `monitorin`")),
        "{}",
        run.stderr
    );
    // The section it should have been is then missing: both are reported.
    assert!(
        run.stderr.contains("missing section `monitoring`"),
        "{}",
        run.stderr
    );
}

#[test]
fn wrong_type() {
    let p = Project::new();
    p.edit("dev", "memory: 2048", "memory: lots");
    let line = p.line_of("dev", "memory: lots");
    let run = validate(&p, "dev");
    assert_eq!(run.code, 2);
    let want = located(&p, "dev", line, 13, "services.learntrac.memory");
    assert!(
        run.stderr
            .contains(&format!("{want}invalid type: string \"lots\"")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("expected: a whole number"),
        "{}",
        run.stderr
    );
}

#[test]
fn bad_fargate_cpu_memory_pair() {
    let p = Project::new();
    p.edit("dev", "memory: 1024", "memory: 8192");
    let line = p.line_of("dev", "memory: 8192");
    let run = validate(&p, "dev");
    assert_eq!(run.code, 2);
    let want = located(&p, "dev", line, 13, "services.trac.memory");
    assert!(
        run.stderr.contains(&format!(
            "{want}8192 MiB is not a valid Fargate memory size for 512 CPU units"
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("expected: 1024-4096 MiB in steps of 1024"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_smallest_fargate_size_takes_no_1536_mib() {
    let p = Project::new();
    p.edit(
        "dev",
        "cpu: 512\n    memory: 1024",
        "cpu: 256\n    memory: 1536",
    );
    let run = validate(&p, "dev");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("1536 MiB is not a valid Fargate memory size for 256 CPU units"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("expected: 512, 1024 or 2048 MiB"),
        "{}",
        run.stderr
    );
}

#[test]
fn duplicate_rule_priority() {
    let p = Project::new();
    p.edit("dev", "priority: 95", "priority: 90");
    let run = validate(&p, "dev");
    assert_eq!(run.code, 2);
    // priority, service, paths: the duplicate sits two lines above the tutor's patterns.
    let line = p.line_of("dev", "paths: [\"/api/chat/*\"") - 2;
    let want = located(&p, "dev", line, 15, "routing[1].priority");
    assert!(
        run.stderr
            .contains(&format!("{want}priority 90 is already used by routing[0]")),
        "{}",
        run.stderr
    );
}

#[test]
fn missing_environment_file() {
    let p = Project::new();
    let run = validate(&p, "staging");
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("staging.yaml: no such environment `staging`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("available: dev, local, prod"),
        "{}",
        run.stderr
    );
    let render = Cli::new().root(p.path()).args(["render", "staging"]).run();
    assert_eq!(render.code, 2, "{}", render.stderr);
}

#[test]
fn unreadable_template_override() {
    let p = Project::new();
    let missing = p.path().join("no-such-templates");
    let run = Cli::new()
        .root(p.path())
        .args(["render", "dev", "--templates"])
        .args([&missing])
        .run();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "cannot use --templates {}: not a folder",
            missing.display()
        )),
        "{}",
        run.stderr
    );

    // A file that is not UTF-8 text cannot be a template.
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("bad.tf.j2"), [0xff, 0xfe, 0x00]).expect("write");
    let run = Cli::new()
        .root(p.path())
        .args(["render", "dev", "--templates"])
        .args([dir.path()])
        .run();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("bad.tf.j2"), "{}", run.stderr);
}

#[test]
fn every_error_of_a_file_is_reported_together() {
    let p = Project::new();
    p.edit("dev", "cpu: 512", "cpu: 300")
        .edit("dev", "memory: 2048", "memory: lots")
        .edit("dev", "priority: 95", "priority: 90")
        .edit("dev", "vpc: default", "vpc: my-vpc")
        .edit("dev", "PYTHON_VERSION: \"2.7\"", "DB_PASSWORD: hunter2");
    let run = validate(&p, "dev");
    assert_eq!(run.code, 2);
    for key in [
        "network.vpc",
        "services.trac.cpu",
        "services.learntrac.memory",
        "services.trac.environment.DB_PASSWORD",
        "routing[1].priority",
    ] {
        assert!(
            run.stderr.contains(&format!(": {key}: ")),
            "{key} not reported:\n{}",
            run.stderr
        );
    }
    // Reported in file order.
    let lines: Vec<usize> = run
        .stderr
        .lines()
        .filter_map(|l| l.split(':').nth(1)?.parse().ok())
        .collect();
    assert!(lines.windows(2).all(|w| w[0] <= w[1]), "{lines:?}");
}

#[test]
fn a_secret_in_plain_environment_is_rejected_with_the_fix() {
    let p = Project::new();
    p.edit("dev", "LOG_FORMAT: json", "OPENAI_API_KEY: sk-live-123");
    let run = validate(&p, "dev");
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("looks like a secret"), "{}", run.stderr);
    assert!(
        run.stderr.contains("move it to services.learntrac.secrets with an SSM parameter name, e.g. OPENAI_API_KEY: /learntrac/dev/openai-api-key"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("sk-live-123"),
        "the value is never echoed"
    );

    let p = Project::new();
    p.edit("dev", "LOG_FORMAT: json", "UPSTREAM: postgres://u:pw@db/x");
    let run = validate(&p, "dev");
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("the value of `UPSTREAM` contains a password"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("pw@db"), "the value is never echoed");
}

#[test]
fn openai_voice_needs_an_endpoint_and_on_openai_a_key() {
    // On OpenAI's endpoint without a key secret: refused at the variable.
    let p = Project::new();
    p.edit(
        "dev",
        "LOG_FORMAT: json",
        "LOG_FORMAT: json\n      CHAT_BASE_URL: https://api.openai.com/v1\n      CHAT_MODEL: gpt-4o-mini\n      VOICE_ENGINE: openai",
    );
    let run = validate(&p, "dev");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("VOICE_ENGINE is openai on OpenAI's endpoint, without a key")
            && run
                .stderr
                .contains("VOICE_API_KEY (or CHAT_API_KEY) under services.learntrac.secrets"),
        "{}",
        run.stderr
    );
    // With the key secret: valid, and `config show` says what the tasks will use.
    p.edit(
        "dev",
        "LEARNTRAC_TOKEN_SECRET: /learntrac/dev/token-secret",
        "LEARNTRAC_TOKEN_SECRET: /learntrac/dev/token-secret\n      CHAT_API_KEY: /learntrac/dev/chat-api-key",
    );
    let run = validate(&p, "dev");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let show = Cli::new()
        .root(p.path())
        .args(["config", "show", "dev", "-o", "json"])
        .run();
    let v: serde_json::Value = serde_json::from_str(&show.stdout).expect("JSON");
    assert!(
        v["derived"]["voice"]
            .as_str()
            .unwrap_or("")
            .starts_with("openai: free-form speech"),
        "{v}"
    );
    // An engine that does not exist, and openai with no endpoint at all.
    let p = Project::new();
    p.edit(
        "dev",
        "LOG_FORMAT: json",
        "LOG_FORMAT: json\n      VOICE_ENGINE: whisper",
    );
    let run = validate(&p, "dev");
    assert!(
        run.stderr.contains("`whisper` is not a voice engine"),
        "{}",
        run.stderr
    );
    let p = Project::new();
    p.edit(
        "dev",
        "LOG_FORMAT: json",
        "LOG_FORMAT: json\n      VOICE_ENGINE: openai",
    );
    let run = validate(&p, "dev");
    assert!(run.stderr.contains("no endpoint is set"), "{}", run.stderr);
}

#[test]
fn aws_voice_needs_a_region_with_transcribe_streaming_and_polly() {
    let p = Project::new();
    p.edit(
        "dev",
        "LOG_FORMAT: json",
        "LOG_FORMAT: json\n      VOICE_ENGINE: aws",
    );
    let region = |p: &Project| {
        let show = Cli::new()
            .root(p.path())
            .args(["config", "show", "dev", "-o", "json"])
            .run();
        let v: serde_json::Value = serde_json::from_str(&show.stdout).expect("JSON");
        v["aws"]["region"].as_str().unwrap_or("").to_string()
    };
    let home = region(&p);
    // dev's region has both: valid, and `config show` says what the tasks need.
    let run = validate(&p, "dev");
    assert_eq!(run.code, 0, "{home}: {}", run.stderr);
    let show = Cli::new()
        .root(p.path())
        .args(["config", "show", "dev", "-o", "json"])
        .run();
    let v: serde_json::Value = serde_json::from_str(&show.stdout).expect("JSON");
    let says = v["derived"]["voice"].as_str().unwrap_or("");
    assert!(
        says.starts_with("aws: free-form speech")
            && says.contains("transcribe:StartStreamTranscription")
            && says.contains("polly:SynthesizeSpeech"),
        "{says}"
    );
    // Milan has Polly but not Transcribe Streaming: refused at the variable, with where.
    p.edit("dev", &format!("region: {home}"), "region: eu-south-1");
    let run = validate(&p, "dev");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "VOICE_ENGINE is aws, but eu-south-1 does not offer both Amazon Transcribe Streaming and Polly"
        ) && run.stderr.contains("eu-west-1")
            && run.stderr.contains(&format!(
                "dev.yaml:{}",
                p.line_of("dev", "VOICE_ENGINE: aws")
            )),
        "{}",
        run.stderr
    );
}

#[test]
fn production_rules() {
    let p = Project::new();
    p.edit("prod", "multi_az: true", "multi_az: false");
    p.edit("prod", "tls:\n", "notls:\n");
    let run = validate(&p, "prod");
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("production requires a multi-AZ database"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("unknown key `notls`"), "{}", run.stderr);
    assert!(
        run.stderr.contains("production requires TLS"),
        "{}",
        run.stderr
    );

    // Production pinned to its account; a certificate of the region, the account and the
    // name people use.
    let p = Project::new();
    p.edit("prod", "  account_id: \"000000000000\"\n", "");
    p.edit(
        "prod",
        "certificate_arn: arn:aws:acm:us-east-2:000000000000:",
        "certificate_arn: arn:aws:acm:us-east-1:000000000000:",
    );
    p.edit(
        "prod",
        "  public_url: https://learntrac.example.edu\n",
        "  verify_timeout: 60\n",
    );
    let run = validate(&p, "prod");
    assert_eq!(run.code, 2, "{}", run.stderr);
    for want in [
        "production requires aws.account_id",
        "the certificate is in us-east-1, the load balancer in aws.region us-east-2",
        "TLS needs deploy.public_url",
    ] {
        assert!(run.stderr.contains(want), "{want}: {}", run.stderr);
    }
    let p = Project::new();
    p.edit(
        "prod",
        "account_id: \"000000000000\"",
        "account_id: \"111111111111\"",
    );
    let run = validate(&p, "prod");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "the certificate belongs to account 000000000000, not to aws.account_id 111111111111"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn semantic_limits() {
    let p = Project::new();
    p.edit(
        "dev",
        "count: { desired: 1, min: 1, max: 2 }\n    health_check:\n      path: /wiki",
        "count: { desired: 3, min: 1, max: 2 }\n    health_check:\n      path: /wiki",
    )
    .edit(
        "dev",
        "TRAC_HTDIGEST: /learntrac/dev/trac/htdigest",
        "TRAC_HTDIGEST: learntrac/dev/trac/htdigest",
    )
    .edit(
        "dev",
        "paths: [\"/api/chat/*\", \"/api/voice/*\"]",
        "paths: [\"/api/chat/*\", \"/api/voice/*\", \"/a\", \"/b\", \"/c\", \"/d\"]",
    )
    .edit(
        "dev",
        "  assign_public_ip: true",
        "  assign_public_ip: true\n  idle_timeout: 5000",
    );
    let run = validate(&p, "dev");
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("services.trac.count: min 1 ≤ desired 3 ≤ max 2 does not hold"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("is not an SSM parameter path: an SSM parameter path starts with `/`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("routing[1].paths: 6 path patterns in one rule"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("network.idle_timeout: 5000 s is outside what an ALB accepts"),
        "{}",
        run.stderr
    );
}

#[test]
fn malformed_yaml_names_the_spot() {
    let p = Project::new();
    p.edit("dev", "  region: us-east-2\n", "  region: [us-east-2\n");
    let run = validate(&p, "dev");
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains(&format!("{}:", p.env_file("dev").display())),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("not valid YAML"), "{}", run.stderr);
}

#[test]
fn json_output_lists_diagnostics() {
    let p = Project::new();
    p.edit("dev", "cpu: 512", "cpu: 300");
    let run = Cli::new()
        .root(p.path())
        .args(["config", "validate", "dev", "local", "-o", "json"])
        .run();
    assert_eq!(run.code, 2);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(v[0]["environment"], "dev");
    assert_eq!(v[0]["valid"], false);
    assert_eq!(v[0]["diagnostics"][0]["key"], "services.trac.cpu");
    assert_eq!(v[0]["diagnostics"][0]["line"], p.line_of("dev", "cpu: 300"));
    assert_eq!(v[1]["environment"], "local");
    assert_eq!(v[1]["valid"], true);
}

#[test]
fn show_resolves_defaults_and_lists_secrets_by_name() {
    let run = Cli::new()
        .args(["config", "show", "dev", "-o", "json"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(v["derived"]["name_prefix"], "learntrac-dev");
    assert_eq!(v["derived"]["serves"], "http");
    assert_eq!(
        v["derived"]["voice"], "off: the service's VOICE_ENGINE is not local, auto, openai or aws",
        "dev's tasks have no voice engines"
    );
    let local = Cli::new()
        .args(["config", "show", "local", "-o", "json"])
        .run();
    let local: serde_json::Value = serde_json::from_str(&local.stdout).expect("JSON");
    assert_eq!(
        local["derived"]["voice"],
        "local engines (espeak-ng, PocketSphinx) in the service image"
    );
    assert_eq!(
        v["services"]["trac"]["health_check"]["interval"], 30,
        "default filled in"
    );
    let secrets = &v["derived"]["wiring"]["learntrac"]["secrets"];
    // The service's own role's password; the master's only reaches db-roles.
    assert_eq!(
        secrets["DATABASE_PASSWORD"],
        "/learntrac/dev/db/service-password"
    );
    assert_eq!(
        secrets["REDIS_AUTH_TOKEN"],
        "/learntrac/dev/redis/auth-token"
    );
    let roles = &v["derived"]["db_roles"];
    assert_eq!(
        roles["secrets"]["DATABASE_PASSWORD"],
        "/learntrac/dev/db/password"
    );
    assert_eq!(roles["environment"]["DATABASE_USER"], "learntrac");
    assert_eq!(
        v["derived"]["wiring"]["trac"]["environment"]["DATABASE_USER"],
        "trac"
    );
    assert_eq!(
        secrets["LEARNTRAC_TOKEN_SECRET"],
        "/learntrac/dev/token-secret"
    );
    assert_eq!(
        v["derived"]["wiring"]["trac"]["environment"]["DATABASE_HOST"],
        "${module.rds.address}"
    );

    let human = Cli::new().args(["config", "show", "prod"]).run();
    assert_eq!(human.code, 0, "{}", human.stderr);
    assert!(human.stdout.contains("serves: https"), "{}", human.stdout);
}

#[test]
fn routing_that_hides_paths_is_warned_about_and_trac_needs_no_rule() {
    let p = Project::new();
    // The original plan's static-file rule before the API rule, and a rule the API rule
    // already covers.
    p.edit(
        "dev",
        "routing:\n",
        "routing:\n  - priority: 80\n    service: trac\n    paths: [\"/chrome/*\", \"*.js\"]\n  - priority: 99\n    service: learntrac\n    paths: [\"/api/LearnTrac/concepts/*\"]\n",
    );
    let run = Cli::new()
        .root(p.path())
        .args(["config", "validate", "dev"])
        .run();
    assert_eq!(
        run.code, 0,
        "warnings do not fail validation: {}",
        run.stderr
    );
    for want in [
        "warning  dev: routing[0].paths[1]: `*.js` (trac, priority 80) takes paths of `/api/LearnTrac/*` (learntrac, priority 90) first, e.g. /api/LearnTrac/",
        "warning  dev: routing[1]: can never match",
    ] {
        assert!(run.stderr.contains(want), "{want}:\n{}", run.stderr);
    }
    let json = Cli::new()
        .root(p.path())
        .args(["config", "validate", "dev", "-o", "json"])
        .run();
    assert!(json.stdout.contains("\"warnings\""), "{}", json.stdout);

    // The shipped environments route cleanly; without a rule for the service, an error.
    let clean = Cli::new().args(["config", "validate"]).run();
    assert_eq!(clean.code, 0, "{}", clean.stderr);
    assert!(!clean.stderr.contains("warning"), "{}", clean.stderr);
    let p = Project::new();
    p.edit(
        "dev",
        "    service: learntrac\n    paths: [\"/api/LearnTrac/*\", \"/api/analytics/*\"]\n",
        "    service: trac\n    paths: [\"/api/LearnTrac/*\", \"/api/analytics/*\"]\n",
    );
    p.edit(
        "dev",
        "    service: learntrac\n    paths: [\"/api/chat/*\"",
        "    service: trac\n    paths: [\"/api/chat/*\"",
    );
    p.edit(
        "dev",
        "    service: learntrac\n    paths: [\"/learn\"",
        "    service: trac\n    paths: [\"/learn\"",
    );
    let run = validate(&p, "dev");
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("no rule sends traffic to `learntrac`"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("no rule sends traffic to `trac`"),
        "{}",
        run.stderr
    );
}

#[test]
fn values_that_would_become_code_are_refused_and_shown_escaped() {
    let p = Project::new();
    p.edit(
        "local",
        "endpoint: http://127.0.0.1:5000",
        "endpoint: \"http://127.0.0.1:5000\\nresource \\\"terraform_data\\\" \\\"x\\\" {}\"",
    )
    .edit(
        "local",
        "    context: trac-legacy\n",
        "    context: \"trac-legacy\\nRUN touch /pwned\"\n",
    )
    .edit(
        "local",
        "      path: /wiki/WikiStart",
        "      path: \"/wiki/WikiStart'); import os; os.system('id'); ('\"",
    )
    .edit(
        "local",
        "  backup_retention_days: 0\n",
        "  backup_retention_days: 0\n  ca_bundle_url: \"https://x/a.pem \\e[31mred\"\n",
    );
    let run = Cli::new()
        .root(p.path())
        .args(["config", "validate", "local"])
        .run();
    assert_eq!(run.code, 2, "{}", run.stderr);
    for key in [
        "aws.endpoint",
        "services.trac.context",
        "services.trac.health_check.path",
        "database.ca_bundle_url",
    ] {
        assert!(
            run.stderr.contains(&format!(": {key}: ")),
            "{key} refused:\n{}",
            run.stderr
        );
    }
    assert!(
        run.stderr.contains("5000\\nresource"),
        "the newline shown escaped: {}",
        run.stderr
    );
    assert!(
        !run.stderr.contains('\x1b'),
        "no terminal escape reaches the terminal: {:?}",
        run.stderr
    );
    let out = p.path().join("out");
    let render = Cli::new()
        .root(p.path())
        .args([
            "render".as_ref(),
            "local".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
        ])
        .run();
    assert_eq!(render.code, 2, "nothing is rendered: {}", render.stderr);
    assert!(!out.exists());
}
