//! Checks that types cannot express: AWS limits, cross-references, and the rules that keep
//! secrets out of plain text.

use std::collections::{BTreeMap, BTreeSet};

use super::model::*;
use super::{FileParser, Partial};

/// Fargate's valid task sizes: CPU units → allowed memory (MiB) range and step (256 CPU
/// units allow only 512, 1024 and 2048: see [`fargate_memory`]).
const FARGATE: &[(u32, u32, u32, u32)] = &[
    (256, 512, 2048, 512),
    (512, 1024, 4096, 1024),
    (1024, 2048, 8192, 1024),
    (2048, 4096, 16384, 1024),
    (4096, 8192, 30720, 1024),
    (8192, 16384, 61440, 4096),
    (16384, 32768, 122880, 8192),
];

/// Whether Fargate runs a task of `cpu` units with `memory` MiB. The smallest size is not a
/// range: 256 units take 512, 1024 or 2048 MiB, never 1536.
fn fargate_memory(cpu: u32, memory: u32) -> bool {
    if cpu == 256 {
        return matches!(memory, 512 | 1024 | 2048);
    }
    FARGATE.iter().any(|&(c, lo, hi, step)| {
        c == cpu && (lo..=hi).contains(&memory) && (memory - lo).is_multiple_of(step)
    })
}

/// CloudWatch Logs accepts only these retention periods.
const LOG_RETENTION_DAYS: &[u32] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// An ALB listener rule accepts at most five condition values.
pub const MAX_PATTERNS_PER_RULE: usize = 5;

/// Variables the rendered task definitions set themselves from Terraform outputs.
pub const WIRED_VARIABLES: &[&str] = &[
    "DATABASE_HOST",
    "DATABASE_PORT",
    "DATABASE_NAME",
    "DATABASE_USER",
    "DATABASE_PASSWORD",
    "DATABASE_SSLMODE",
    "DATABASE_SSLROOTCERT",
    "REDIS_URL",
    "REDIS_AUTH_TOKEN",
    "TRAC_BASE_URL",
    "PORT",
    "LEARNTRAC_ENVIRONMENT",
];

/// Parts of a name that mark a variable as secret: its value belongs in SSM, not in
/// `environment`.
const SECRET_WORDS: &[&str] = &[
    "PASSWORD",
    "PASSWD",
    "SECRET",
    "API_KEY",
    "PRIVATE_KEY",
    "ACCESS_KEY",
    "CREDENTIAL",
];

/// Whether a variable's name says it holds a secret. A word ending in `TOKEN`
/// (`REDIS_AUTH_TOKEN`, `NGROK_AUTHTOKEN`) or `TOKENS` counts — but not `TOKENS` after a
/// count word: `CHAT_DAILY_TOKENS` and `CHAT_MAX_TOKENS` are counts of model tokens, which
/// docs/tutor.md tells operators to set.
pub fn looks_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    let words: Vec<&str> = upper.split(|c: char| !c.is_ascii_alphanumeric()).collect();
    SECRET_WORDS.iter().any(|w| upper.contains(w))
        || words.iter().enumerate().any(|(i, w)| {
            let counted = i > 0 && COUNT_WORDS.contains(&words[i - 1]);
            w.ends_with("TOKEN") || (w.ends_with("TOKENS") && !counted)
        })
}

/// Words that make `…_TOKENS` a number of tokens rather than tokens.
const COUNT_WORDS: &[&str] = &["MAX", "MIN", "DAILY", "LIMIT", "NUM", "TOTAL"];

/// `scheme://user:password@host` carries a password in plain text.
pub fn has_url_credentials(value: &str) -> bool {
    let Some((_, rest)) = value.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

/// What section checks need to know about the environment as a whole.
struct Scope {
    production: bool,
    ssm_prefix: String,
    /// aws.region, when it parsed.
    region: Option<String>,
}

/// Runs every check whose section parsed, so one broken section hides nothing else.
pub(super) fn check(env: &Partial, file_name: &str, p: &mut FileParser) {
    let env_name = env.environment.as_deref().unwrap_or(file_name);
    let scope = Scope {
        production: env_name == "prod",
        ssm_prefix: format!(
            "/{}/{env_name}",
            env.project.as_deref().unwrap_or("learntrac")
        ),
        region: env.aws.as_ref().map(|a| a.region.clone()),
    };
    names(
        env.project.as_deref(),
        env.environment.as_deref(),
        file_name,
        p,
    );
    if let Some(a) = &env.aws {
        aws(a, p);
    }
    if let Some(n) = &env.network {
        network(n, p);
    }
    let mut ports = BTreeMap::new();
    for (name, svc) in [
        (ServiceName::Trac, &env.trac),
        (ServiceName::Learntrac, &env.learntrac),
    ] {
        let Some(svc) = svc else { continue };
        service(&scope, name, svc, p);
        if let Some(other) = ports.insert(svc.port, name) {
            p.at_value(
                &format!("services.{name}.port"),
                format!("port {} is already used by `{other}`", svc.port),
            )
            .expected = Some("a port per service, so the local stack can run both".into());
        }
    }
    if let Some(r) = &env.routing {
        routing(r, p);
    }
    if let Some(d) = &env.database {
        database(&scope, d, p);
    }
    if let Some(c) = &env.cache {
        cache(c, p);
    }
    if let Some(t) = &env.tls {
        tls(&scope, t, p);
    }
    if let Some(m) = &env.monitoring {
        monitoring(m, p);
    }
    if let Some(t) = &env.terraform {
        terraform(&scope, t, p);
    }
    if let Some(i) = &env.images {
        images(i, p);
    }
    if let Some(Some(r)) = &env.registry {
        registry(r, p);
    }
    across_sections(&scope, env, p);
    if let Some(l) = &env.local {
        for (k, v) in [
            ("local.postgres_image", &l.postgres_image),
            ("local.redis_image", &l.redis_image),
        ] {
            if !is_image_ref(v) {
                p.at_value(k, format!("`{v}` is not an image reference"))
                    .expected = Some("NAME[:TAG][@DIGEST], e.g. postgres:15".into());
            }
        }
    }
    // Trac writes it into trac.ini as base_url: one line, one URL.
    if let Some(Some(url)) = env.deploy.as_ref().map(|d| &d.public_url)
        && !plain_url(url)
    {
        p.at_value("deploy.public_url", format!("`{url}` is not a plain URL"))
            .expected = Some("https://HOST[/PATH], e.g. https://learn.school.edu".into());
    }
}

/// What one section cannot tell alone: the account production is pinned to, and the
/// certificate against the region, the account and the name people use.
fn across_sections(scope: &Scope, env: &Partial, p: &mut FileParser) {
    if let Some(a) = &env.aws
        && scope.production
        && a.account_id.is_none()
    {
        p.at_key(
            "aws",
            "production requires aws.account_id: without it nothing stops a deploy, rollback \
             or destroy run with another account's credentials",
        )
        .expected = Some(
            "account_id: \"123456789012\" (your account; every command then refuses any other)"
                .into(),
        );
    }
    let Some(arn) = env.tls.as_ref().and_then(|t| t.certificate_arn.as_deref()) else {
        return;
    };
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() < 6 {
        return; // tls() reports the ARN's shape
    }
    if let Some(a) = &env.aws {
        if parts[3] != a.region {
            p.at_value(
                "tls.certificate_arn",
                format!(
                    "the certificate is in {}, the load balancer in aws.region {}: a load \
                     balancer can only use a certificate of its own region",
                    parts[3], a.region
                ),
            )
            .expected = Some(format!(
                "a certificate issued in {} (one made for CloudFront lives in us-east-1)",
                a.region
            ));
        }
        if let Some(account) = &a.account_id
            && parts[4] != account
        {
            p.at_value(
                "tls.certificate_arn",
                format!(
                    "the certificate belongs to account {}, not to aws.account_id {account}",
                    parts[4]
                ),
            )
            .expected = Some(format!("a certificate of account {account}"));
        }
    }
    if env
        .deploy
        .as_ref()
        .and_then(|d| d.public_url.as_ref())
        .is_none()
    {
        p.at_key(
            "tls",
            "TLS needs deploy.public_url: no certificate can name the load balancer's own \
             *.elb.amazonaws.com host, so Trac's links, deploy's checks and rollback's would \
             all meet a certificate error",
        )
        .expected = Some(
            "deploy: { public_url: https://learn.school.edu } — the name on the certificate, \
             pointed at the load balancer (a CNAME or Route 53 alias)"
                .into(),
        );
    }
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.ends_with('-')
}

fn names(project: Option<&str>, environment: Option<&str>, file_name: &str, p: &mut FileParser) {
    for (key, value) in [("project", project), ("environment", environment)] {
        if let Some(value) = value
            && !is_name(value)
        {
            p.at_value(
                key,
                format!("`{value}` cannot be part of AWS resource names"),
            )
            .expected = Some("lowercase letters, digits and dashes, starting with a letter".into());
        }
    }
    if let Some(declared) = environment
        && declared != file_name
    {
        p.at_value(
            "environment",
            format!("this file is `{file_name}.yaml` but declares `{declared}`"),
        )
        .expected = Some(format!("environment: {file_name}"));
    }
    // The load balancer's name is `<project>-<environment>-alb` and AWS caps it at 32.
    if let (Some(project), Some(environment)) = (project, environment) {
        let prefix = format!("{project}-{environment}");
        if prefix.len() > 28 {
            p.at_value(
                "environment",
                format!(
                    "`{prefix}` is {} characters; AWS load balancer names allow 32 with `-alb`",
                    prefix.len()
                ),
            )
            .expected = Some("project and environment together at most 27 characters".into());
        }
    }
}

fn aws(a: &Aws, p: &mut FileParser) {
    let r = &a.region;
    if !is_region(r) {
        p.at_value("aws.region", format!("`{r}` is not an AWS region"))
            .expected = Some("a region code such as us-east-2".into());
    }
    if let Some(id) = &a.account_id
        && !(id.len() == 12 && id.chars().all(|c| c.is_ascii_digit()))
    {
        p.at_value("aws.account_id", format!("`{id}` is not an AWS account id"))
            .expected = Some("12 digits, quoted so YAML keeps leading zeros".into());
    }
    // The endpoint lands in providers.tf (a comment and HCL strings): a newline in it
    // would write Terraform of its own.
    if let Some(url) = &a.endpoint
        && !plain_url(url)
    {
        p.at_value(
            "aws.endpoint",
            format!("`{}` is not a plain URL", url.escape_debug()),
        )
        .expected = Some("http://HOST:PORT or https://HOST".into());
    }
}

/// AWS region codes: `us-east-2`, `ap-southeast-1`, `us-gov-west-1`.
fn is_region(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts.iter().all(|s| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|s| s.chars().all(|c| c.is_ascii_digit()))
}

/// A Docker image reference: name components, `:tag`, `@digest` (no spaces, quotes or
/// control characters: it lands on a Dockerfile's FROM line).
fn is_image_ref(s: &str) -> bool {
    (1..=255).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':' | '@'))
}

/// `prefix` followed by lowercase letters, digits and dots (`db.t3.micro`).
fn is_type(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix).is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.')
    })
}

/// `15`, `15.4`, `7.1`.
fn is_version(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// AWS tag text: letters, digits, spaces and `_ . : / = + - @` (what every service accepts).
fn is_tag_text(s: &str, max: usize) -> bool {
    s.chars().count() <= max
        && s.chars().all(|c| {
            c.is_alphanumeric() || matches!(c, ' ' | '_' | '.' | ':' | '/' | '=' | '+' | '-' | '@')
        })
}

/// One http(s) URL and nothing else: printable ASCII without quotes, backslashes, `$` or
/// backticks, so it reads the same in HCL, a Dockerfile line, a comment and a shell.
fn plain_url(url: &str) -> bool {
    (url.starts_with("https://") || url.starts_with("http://"))
        && url
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\\' | '\'' | '$' | '`'))
}

fn network(n: &Network, p: &mut FileParser) {
    let vpc = &n.vpc;
    let id_ok = vpc
        .strip_prefix("vpc-")
        .is_some_and(|h| (8..=17).contains(&h.len()) && h.chars().all(|c| c.is_ascii_hexdigit()));
    if !n.uses_default_vpc() && !id_ok {
        p.at_value(
            "network.vpc",
            format!("`{vpc}` is neither `default` nor a VPC id"),
        )
        .expected = Some("`default`, or vpc- followed by 8 or 17 hex digits".into());
    }
    for (kind, tags) in [
        ("public_subnet_tags", &n.public_subnet_tags),
        ("private_subnet_tags", &n.private_subnet_tags),
    ] {
        for (k, v) in tags {
            if k.is_empty() || !is_tag_text(k, 128) || !is_tag_text(v, 256) {
                p.at_value(
                    &format!("network.{kind}.{k}"),
                    format!("`{k}: {v}` is not an AWS tag"),
                )
                .expected = Some(
                    "a key of 1-128 and a value of 0-256 letters, digits, spaces and _.:/=+-@"
                        .into(),
                );
            }
        }
    }
    if !(1..=4000).contains(&n.idle_timeout) {
        p.at_value(
            "network.idle_timeout",
            format!("{} s is outside what an ALB accepts", n.idle_timeout),
        )
        .expected = Some("1-4000 (seconds; 60 is AWS's default)".into());
    }
}

pub fn ssm_path_problem(name: &str) -> Option<&'static str> {
    if !name.starts_with('/') {
        return Some("an SSM parameter path starts with `/`");
    }
    if name.len() > 1011 {
        return Some("SSM parameter names are at most 1011 characters");
    }
    if name.ends_with('/') || name.contains("//") {
        return Some("SSM parameter paths have no empty segments");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '.' | '-'))
    {
        return Some("SSM parameter names use letters, digits and / _ . - only");
    }
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("/aws") || lower.starts_with("/ssm") {
        return Some("names under /aws and /ssm are reserved by AWS");
    }
    None
}

fn check_ssm_path(p: &mut FileParser, key: &str, name: &str) {
    if let Some(why) = ssm_path_problem(name) {
        p.at_value(key, format!("`{name}` is not an SSM parameter path: {why}"))
            .expected = Some("a path such as /learntrac/dev/token-secret".into());
    }
}

fn service(scope: &Scope, name: ServiceName, svc: &Service, p: &mut FileParser) {
    let key = |k: &str| format!("services.{name}.{k}");
    if svc.port == 0 {
        p.at_value(&key("port"), "port 0 is not a port").expected = Some("1-65535".into());
    }
    match FARGATE.iter().find(|(cpu, ..)| *cpu == svc.cpu) {
        None => {
            let cpus: Vec<String> = FARGATE.iter().map(|f| f.0.to_string()).collect();
            p.at_value(
                &key("cpu"),
                format!("{} is not a Fargate CPU size", svc.cpu),
            )
            .expected = Some(format!("one of {}", cpus.join(", ")));
        }
        Some(&(cpu, lo, hi, step)) => {
            if !fargate_memory(svc.cpu, svc.memory) {
                p.at_value(
                    &key("memory"),
                    format!(
                        "{} MiB is not a valid Fargate memory size for {cpu} CPU units",
                        svc.memory
                    ),
                )
                .expected = Some(if cpu == 256 {
                    "512, 1024 or 2048 MiB".to_string()
                } else {
                    format!("{lo}-{hi} MiB in steps of {step}")
                });
            }
        }
    }
    let c = &svc.count;
    if !(c.min <= c.desired && c.desired <= c.max) {
        p.at_value(
            &key("count"),
            format!(
                "min {} ≤ desired {} ≤ max {} does not hold",
                c.min, c.desired, c.max
            ),
        )
        .expected = Some("min ≤ desired ≤ max".into());
    }
    if c.max == 0 {
        p.at_value(&key("count.max"), "a service with max 0 can never run")
            .expected = Some("max ≥ 1".into());
    }
    if !(1.0..=100.0).contains(&svc.autoscaling_cpu_target) {
        p.at_value(&key("autoscaling_cpu_target"), "CPU target is a percentage")
            .expected = Some("1-100".into());
    }
    let hc = &svc.health_check;
    // The path lands in the ALB's health check, the Dockerfile's HEALTHCHECK and the task
    // definition's probe (a Python string literal for Trac): a plain URL path only.
    let plain_path = hc.path.starts_with('/')
        && hc.path.len() <= 1024
        && hc
            .path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/-._~%&=?+".contains(c));
    if !plain_path {
        p.at_value(
            &key("health_check.path"),
            format!(
                "`{}` is not a plain absolute URL path",
                hc.path.escape_debug()
            ),
        )
        .expected =
            Some("a path starting with /, of letters, digits and / - . _ ~ % & = ? + only".into());
    }
    if hc.grace_period > 300 {
        p.at_value(
            &key("health_check.grace_period"),
            format!(
                "{}s is longer than ECS lets a container start",
                hc.grace_period
            ),
        )
        .expected = Some("0-300 (it is also the container health check's start period)".into());
    }
    if !(2..=120).contains(&hc.timeout)
        || hc.timeout >= hc.interval
        || !(5..=300).contains(&hc.interval)
    {
        p.at_value(
            &key("health_check.timeout"),
            format!(
                "timeout {}s with interval {}s is not accepted by the ALB",
                hc.timeout, hc.interval
            ),
        )
        .expected =
            Some("interval 5-300 s and a timeout of 2-120 s shorter than the interval".into());
    }
    for (k, v) in [
        ("healthy_threshold", hc.healthy_threshold),
        ("unhealthy_threshold", hc.unhealthy_threshold),
    ] {
        if !(2..=10).contains(&v) {
            p.at_value(
                &key(&format!("health_check.{k}")),
                format!("{v} is out of range"),
            )
            .expected = Some("2-10".into());
        }
    }
    if hc.matcher.is_empty()
        || !hc
            .matcher
            .chars()
            .all(|c| c.is_ascii_digit() || c == ',' || c == '-')
    {
        p.at_value(
            &key("health_check.matcher"),
            format!("`{}` is not an HTTP code matcher", hc.matcher),
        )
        .expected = Some("codes such as \"200\", \"200,302\" or \"200-299\"".into());
    }
    if let Some(s) = &svc.stickiness
        && !(1..=604_800).contains(&s.duration)
    {
        p.at_value(
            &key("stickiness.duration"),
            format!("{} seconds is out of range", s.duration),
        )
        .expected = Some("1-604800 seconds".into());
    }
    // The context also lands in the Dockerfile's comment header: a plain path only.
    if svc.context.is_empty()
        || svc.context.starts_with('/')
        || svc.context.split('/').any(|s| s == "..")
        || !svc
            .context
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
    {
        p.at_value(
            &key("context"),
            format!(
                "`{}` is not a folder inside the repository",
                svc.context.escape_debug()
            ),
        )
        .expected =
            Some("a relative path such as trac-legacy or ., of letters, digits and - _ . /".into());
    }

    for (var, value) in &svc.environment {
        let at = key(&format!("environment.{var}"));
        if !is_env_var(var) {
            p.at_key(
                &at,
                format!("`{var}` is not a valid environment variable name"),
            )
            .expected = Some("letters, digits and _, not starting with a digit".into());
        } else if WIRED_VARIABLES.contains(&var.as_str()) {
            p.at_key(
                &at,
                format!("`{var}` is set by learntrac from the deployed resources"),
            )
            .expected = Some(format!("none of {}", WIRED_VARIABLES.join(", ")));
        } else if looks_secret(var) {
            p.at_key(
                &at,
                format!("`{var}` looks like a secret and would be stored in plain text"),
            )
            .expected = Some(format!(
                "move it to services.{name}.secrets with an SSM parameter name, e.g. {var}: {}/{}",
                scope.ssm_prefix,
                var.to_ascii_lowercase().replace('_', "-")
            ));
        } else if has_url_credentials(value) {
            p.at_value(&at, format!("the value of `{var}` contains a password"))
                .expected =
                Some("a URL without user:password@; put credentials under secrets".into());
        }
    }
    for (var, param) in &svc.secrets {
        let at = key(&format!("secrets.{var}"));
        if !is_env_var(var) {
            p.at_key(
                &at,
                format!("`{var}` is not a valid environment variable name"),
            )
            .expected = Some("letters, digits and _, not starting with a digit".into());
        } else if WIRED_VARIABLES.contains(&var.as_str()) {
            p.at_key(
                &at,
                format!("`{var}` is set by learntrac from the deployed resources"),
            )
            .expected = Some(format!("none of {}", WIRED_VARIABLES.join(", ")));
        } else if svc.environment.contains_key(var) {
            p.at_key(&at, format!("`{var}` is also a plain variable"))
                .expected = Some("each variable either in environment or in secrets".into());
        }
        check_ssm_path(p, &at, param);
    }
    if name == ServiceName::Learntrac {
        voice(
            svc,
            &key("environment.VOICE_ENGINE"),
            scope.region.as_deref(),
            p,
        );
    }
}

/// Regions that offer both Amazon Transcribe Streaming and Polly (botocore 1.44.18's
/// endpoints.json, FIPS endpoints aside).
const SPEECH_REGIONS: [&str; 20] = [
    "af-south-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-5",
    "ap-southeast-7",
    "ca-central-1",
    "eu-central-1",
    "eu-central-2",
    "eu-west-1",
    "eu-west-2",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-2",
    "cn-northwest-1",
    "us-gov-west-1",
    "eusc-de-east-1",
];

/// The service's VOICE_ENGINE: a value it knows; `openai` with an endpoint and, on OpenAI's
/// own, a key among the secrets; `aws` in a region that has both speech services (else the
/// tasks would start and every spoken question fail).
fn voice(svc: &Service, at: &str, region: Option<&str>, p: &mut FileParser) {
    let env = |k: &str| svc.environment.get(k).map(String::as_str);
    match env("VOICE_ENGINE") {
        None | Some("none" | "local" | "auto") => {}
        Some("aws") => {
            let elsewhere = ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_TRANSCRIBE_STREAMING"]
                .iter()
                .any(|k| env(k).is_some());
            if let Some(r) = region
                && !elsewhere
                && !SPEECH_REGIONS.contains(&r)
            {
                p.at_value(
                    at,
                    format!(
                        "VOICE_ENGINE is aws, but {r} does not offer both Amazon Transcribe \
                         Streaming and Polly"
                    ),
                )
                .expected = Some(format!(
                    "openai, local or none in {r}, or an aws.region among {}",
                    SPEECH_REGIONS.join(", ")
                ));
            }
        }
        Some("openai") => {
            let endpoint = env("VOICE_BASE_URL").or(env("CHAT_BASE_URL"));
            let keyed = ["VOICE_API_KEY", "CHAT_API_KEY"]
                .iter()
                .any(|k| svc.secrets.contains_key(*k));
            match endpoint {
                None => {
                    p.at_value(at, "VOICE_ENGINE is openai but no endpoint is set")
                        .expected = Some(
                        "VOICE_BASE_URL (or CHAT_BASE_URL) in services.learntrac.environment, e.g. https://api.openai.com/v1".into(),
                    );
                }
                Some(url) if url.contains("api.openai.com") && !keyed => {
                    p.at_value(at, "VOICE_ENGINE is openai on OpenAI's endpoint, without a key")
                        .expected = Some(
                        "VOICE_API_KEY (or CHAT_API_KEY) under services.learntrac.secrets, naming an SSM parameter".into(),
                    );
                }
                Some(_) => {}
            }
        }
        Some(other) => {
            p.at_value(at, format!("`{other}` is not a voice engine"))
                .expected = Some("none, local, auto, openai or aws".into());
        }
    }
}

fn is_env_var(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Characters an ALB path-pattern condition accepts.
fn pattern_char_ok(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_-.$/~\"'@:+&*?".contains(c)
}

fn routing(rules: &[RoutingRule], p: &mut FileParser) {
    let mut seen: BTreeMap<u32, usize> = BTreeMap::new();
    let mut routed = BTreeSet::new();
    for (i, rule) in rules.iter().enumerate() {
        routed.insert(rule.service);
        let at = format!("routing[{i}]");
        if !(1..=50_000).contains(&rule.priority) {
            p.at_value(
                &format!("{at}.priority"),
                format!("{} is not a listener rule priority", rule.priority),
            )
            .expected = Some("1-50000".into());
        }
        if let Some(first) = seen.insert(rule.priority, i) {
            p.at_value(
                &format!("{at}.priority"),
                format!(
                    "priority {} is already used by routing[{first}]",
                    rule.priority
                ),
            )
            .expected = Some("a unique priority per rule".into());
        }
        if rule.paths.is_empty() || rule.paths.len() > MAX_PATTERNS_PER_RULE {
            p.at_value(
                &format!("{at}.paths"),
                format!("{} path patterns in one rule", rule.paths.len()),
            )
            .expected = Some(format!(
                "1-{MAX_PATTERNS_PER_RULE} patterns (an ALB rule's limit); split longer lists into several rules"
            ));
        }
        for (j, pat) in rule.paths.iter().enumerate() {
            let ok = !pat.is_empty()
                && pat.len() <= 128
                && (pat.starts_with('/') || pat.starts_with('*'))
                && pat.chars().all(pattern_char_ok);
            if !ok {
                p.at_value(&format!("{at}.paths[{j}]"), format!("`{pat}` is not an ALB path pattern"))
                    .expected = Some(
                    "up to 128 characters starting with / or *, using letters, digits, _-.$/~\"'@:+& and the wildcards * and ?"
                        .into(),
                );
            }
        }
    }
    // The listener's default action reaches the default service; every other needs a rule.
    for name in ServiceName::ALL {
        if name != ServiceName::DEFAULT_ROUTE && !routed.contains(&name) {
            p.at_value("routing", format!("no rule sends traffic to `{name}`"))
                .expected = Some(format!("at least one rule with service: {name}"));
        }
    }
}

fn database(scope: &Scope, db: &Database, p: &mut FileParser) {
    if !is_version(&db.engine_version) {
        p.at_value(
            "database.engine_version",
            format!("`{}` is not a PostgreSQL version", db.engine_version),
        )
        .expected = Some("a version such as \"15\" or \"15.4\"".into());
    }
    if !is_type(&db.instance_class, "db.") {
        p.at_value(
            "database.instance_class",
            format!("`{}` is not an RDS instance class", db.instance_class),
        )
        .expected = Some("a class such as db.t3.micro".into());
    }
    if !(20..=65_536).contains(&db.allocated_storage) {
        p.at_value(
            "database.allocated_storage",
            format!("{} GiB is out of range", db.allocated_storage),
        )
        .expected = Some("20-65536 GiB".into());
    }
    if let Some(max) = db.max_allocated_storage
        && max < db.allocated_storage
    {
        p.at_value(
            "database.max_allocated_storage",
            "smaller than allocated_storage",
        )
        .expected = Some(format!("at least {}", db.allocated_storage));
    }
    for (key, value) in [
        ("database.name", &db.name),
        ("database.username", &db.username),
    ] {
        let mut chars = value.chars();
        let ok = value.len() <= 63
            && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            p.at_value(
                key,
                format!("`{value}` is not a PostgreSQL identifier RDS accepts"),
            )
            .expected = Some("a letter, then letters, digits or _, at most 63".into());
        }
    }
    if matches!(db.username.as_str(), "postgres" | "rdsadmin" | "admin") {
        p.at_value(
            "database.username",
            format!("`{}` is reserved by RDS", db.username),
        )
        .expected = Some("another name, such as learntrac".into());
    }
    {
        use learntrac_service::db::roles::{SERVICE_ROLE, TRAC_ROLE};
        if [TRAC_ROLE, SERVICE_ROLE].contains(&db.username.as_str()) {
            p.at_value(
                "database.username",
                format!(
                    "`{}` is the name of a service's own role; the master user needs another",
                    db.username
                ),
            )
            .expected = Some("another name, such as learntrac".into());
        }
    }
    check_ssm_path(p, "database.password_parameter", &db.password_parameter);
    // The URL lands in a Dockerfile `ADD` line.
    let url = &db.ca_bundle_url;
    if !plain_url(url) {
        p.at_value(
            "database.ca_bundle_url",
            format!("`{}` is not a plain http(s) URL", url.escape_debug()),
        )
        .expected = Some(
            "a URL such as https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
                .into(),
        );
    }
    if db.backup_retention_days > 35 {
        p.at_value(
            "database.backup_retention_days",
            "RDS keeps backups at most 35 days",
        )
        .expected = Some("0-35".into());
    }
    if scope.production && !db.multi_az {
        p.at_value(
            "database.multi_az",
            "production requires a multi-AZ database",
        )
        .expected = Some("multi_az: true".into());
    }
    if scope.production && db.backup_retention_days == 0 {
        p.at_value(
            "database.backup_retention_days",
            "production requires backups",
        )
        .expected = Some("1-35".into());
    }
}

fn cache(c: &Cache, p: &mut FileParser) {
    if !is_version(&c.engine_version) {
        p.at_value(
            "cache.engine_version",
            format!("`{}` is not a Redis version", c.engine_version),
        )
        .expected = Some("a version such as \"7.1\"".into());
    }
    if !is_type(&c.node_type, "cache.") {
        p.at_value(
            "cache.node_type",
            format!("`{}` is not an ElastiCache node type", c.node_type),
        )
        .expected = Some("a type such as cache.t3.micro".into());
    }
    if !(1..=6).contains(&c.nodes) {
        p.at_value("cache.nodes", format!("{} nodes", c.nodes))
            .expected = Some("1-6".into());
    }
    if c.snapshot_retention_days > 35 {
        p.at_value(
            "cache.snapshot_retention_days",
            "ElastiCache keeps snapshots at most 35 days",
        )
        .expected = Some("0-35".into());
    }
}

fn tls(scope: &Scope, t: &Tls, p: &mut FileParser) {
    match &t.certificate_arn {
        Some(arn) => {
            let parts: Vec<&str> = arn.splitn(6, ':').collect();
            let ok = parts.len() == 6
                && parts[0] == "arn"
                && parts[1].starts_with("aws")
                && parts[2] == "acm"
                && parts[4].len() == 12
                && parts[4].chars().all(|c| c.is_ascii_digit())
                && is_region(parts[3])
                && parts[5].strip_prefix("certificate/").is_some_and(|id| {
                    !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                });
            if !ok {
                p.at_value(
                    "tls.certificate_arn",
                    format!("`{arn}` is not an ACM certificate ARN"),
                )
                .expected = Some("arn:aws:acm:REGION:ACCOUNT:certificate/ID".into());
            }
        }
        None if scope.production => {
            p.at_key("tls", "production requires TLS").expected =
                Some("tls: { certificate_arn: arn:aws:acm:… }".into());
        }
        None => {}
    }
}

fn monitoring(m: &Monitoring, p: &mut FileParser) {
    if let Some(email) = &m.alert_email
        && !(email.len() <= 254
            && email
                .chars()
                .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\\' | '\'' | '`' | '$'))
            && email
                .split_once('@')
                .is_some_and(|(u, d)| !u.is_empty() && d.contains('.')))
    {
        p.at_value(
            "monitoring.alert_email",
            format!("`{email}` is not an e-mail address"),
        )
        .expected = Some("an address such as ops@school.edu".into());
    }
    if !LOG_RETENTION_DAYS.contains(&m.log_retention_days) {
        let allowed: Vec<String> = LOG_RETENTION_DAYS.iter().map(u32::to_string).collect();
        p.at_value(
            "monitoring.log_retention_days",
            format!(
                "CloudWatch Logs does not keep logs {} days",
                m.log_retention_days
            ),
        )
        .expected = Some(format!("one of {}", allowed.join(", ")));
    }
    let a = &m.alarms;
    for (k, v) in [
        ("cpu_percent", a.cpu_percent),
        ("memory_percent", a.memory_percent),
        ("db_cpu_percent", a.db_cpu_percent),
    ] {
        if !(1.0..=100.0).contains(&v) {
            p.at_value(
                &format!("monitoring.alarms.{k}"),
                format!("{v} is not a percentage"),
            )
            .expected = Some("1-100".into());
        }
    }
}

fn terraform(scope: &Scope, t: &TerraformSettings, p: &mut FileParser) {
    match (t.backend, &t.s3) {
        (BackendKind::S3, None) => {
            p.at_value("terraform.backend", "backend s3 needs its settings")
                .expected = Some("terraform.s3: { bucket, key, lock_table }".into());
        }
        (BackendKind::Local, Some(_)) => {
            p.at_key(
                "terraform.s3",
                "s3 settings with backend local would be ignored",
            )
            .expected = Some("backend: s3, or no s3 section".into());
        }
        (BackendKind::Local, None) if scope.production => {
            p.at_value(
                "terraform.backend",
                "production state must not live on one machine",
            )
            .expected = Some("backend: s3 with terraform.s3: { bucket, key, lock_table }".into());
        }
        _ => {}
    }
    if let Some(s3) = &t.s3 {
        let b = &s3.bucket;
        let ok = (3..=63).contains(&b.len())
            && b.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
            && b.starts_with(|c: char| c.is_ascii_alphanumeric())
            && b.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !ok {
            p.at_value(
                "terraform.s3.bucket",
                format!("`{b}` is not an S3 bucket name"),
            )
            .expected = Some("3-63 lowercase letters, digits, dots and dashes".into());
        }
        if let Some(region) = &s3.region
            && !is_region(region)
        {
            p.at_value(
                "terraform.s3.region",
                format!("`{region}` is not an AWS region"),
            )
            .expected = Some("a region code such as us-east-2".into());
        }
        if let Some(table) = &s3.lock_table
            && !((3..=255).contains(&table.len())
                && table
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
        {
            p.at_value(
                "terraform.s3.lock_table",
                format!("`{table}` is not a DynamoDB table name"),
            )
            .expected = Some("3-255 letters, digits, _ - and .".into());
        }
        if s3.key.len() > 1024
            || !s3
                .key
                .chars()
                .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\\' | '\'' | '`' | '$'))
        {
            p.at_value(
                "terraform.s3.key",
                format!("`{}` is not a plain object key", s3.key),
            )
            .expected = Some(
                "printable ASCII without quotes, `\\` or `$`, e.g. learntrac/dev/terraform.tfstate"
                    .into(),
            );
        } else if s3.key.is_empty() || s3.key.starts_with('/') {
            p.at_value(
                "terraform.s3.key",
                "the state key must be a relative object key",
            )
            .expected = Some("a key such as learntrac/dev/terraform.tfstate".into());
        }
    }
}

fn images(i: &BaseImages, p: &mut FileParser) {
    for (k, v) in [
        ("trac_base", &i.trac_base),
        ("rust_builder", &i.rust_builder),
        ("service_runtime", &i.service_runtime),
    ] {
        if !is_image_ref(v) {
            p.at_value(
                &format!("images.{k}"),
                format!("`{v}` is not an image reference"),
            )
            .expected = Some("NAME[:TAG][@DIGEST], e.g. debian:bookworm-slim".into());
        }
    }
    if !matches!(i.platform.as_str(), "linux/amd64" | "linux/arm64") {
        p.at_value(
            "images.platform",
            format!("Fargate does not run `{}`", i.platform),
        )
        .expected = Some("linux/amd64 or linux/arm64".into());
    }
}

fn registry(r: &str, p: &mut FileParser) {
    if !is_image_ref(r) || r.contains("://") || r.contains('@') {
        p.at_value("registry", format!("`{r}` is not a registry address"))
            .expected = Some("HOST[:PORT][/PATH] without a scheme, e.g. 127.0.0.1:5000".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_and_url_passwords() {
        assert!(looks_secret("DB_PASSWORD"));
        assert!(looks_secret("openai_api_key"));
        assert!(!looks_secret("TRAC_ENV"));
        assert!(looks_secret("REDIS_AUTH_TOKEN") && looks_secret("token"));
        assert!(!looks_secret("CHAT_DAILY_TOKENS") && !looks_secret("CHAT_MAX_TOKENS"));
        assert!(looks_secret("NGROK_AUTHTOKEN") && looks_secret("API_TOKENS"));
        assert!(has_url_credentials("postgres://u:p@host/db"));
        assert!(!has_url_credentials("postgres://u@host/db"));
        assert!(!has_url_credentials("http://host:8000/x@y"));
    }

    /// Every CPU size against every memory size in 256 MiB steps, compared with AWS's table
    /// as the Fargate documentation lists it (written out, not derived from FARGATE).
    #[test]
    fn fargate_sizes_match_aws_table() {
        let aws: Vec<(u32, Vec<u32>)> = vec![
            (256, vec![512, 1024, 2048]),
            (512, (1..=4).map(|g| g * 1024).collect()),
            (1024, (2..=8).map(|g| g * 1024).collect()),
            (2048, (4..=16).map(|g| g * 1024).collect()),
            (4096, (8..=30).map(|g| g * 1024).collect()),
            (8192, (4..=15).map(|g| g * 4096).collect()),
            (16384, (4..=15).map(|g| g * 8192).collect()),
        ];
        for cpu in [128, 256, 512, 1024, 2048, 3072, 4096, 8192, 16384, 32768] {
            let allowed = aws.iter().find(|(c, _)| *c == cpu).map(|(_, m)| m);
            for memory in (256..=131_072).step_by(256) {
                let want = allowed.is_some_and(|m| m.contains(&memory));
                assert_eq!(fargate_memory(cpu, memory), want, "{cpu} CPU, {memory} MiB");
            }
        }
    }

    #[test]
    fn ssm_paths() {
        assert_eq!(ssm_path_problem("/learntrac/dev/db/password"), None);
        assert!(ssm_path_problem("learntrac/dev").is_some());
        assert!(ssm_path_problem("/aws/reference/x").is_some());
        assert!(ssm_path_problem("/a//b").is_some());
    }
}
