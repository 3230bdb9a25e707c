//! What templates see: the environment as written, plus the values derived from it, so
//! that templates stay free of logic that tests cannot reach.

use serde::Serialize;

use super::hcl::quote;
use crate::config::{Environment, RoutingRule, Service, ServiceName};

#[derive(Debug, Serialize)]
pub struct RenderContext<'a> {
    pub env: &'a Environment,
    pub prefix: String,
    pub production: bool,
    pub tls: bool,
    pub services: Vec<ServiceContext<'a>>,
    /// Routing rules in the order the ALB evaluates them.
    pub rules: Vec<RuleContext<'a>>,
    pub backend: BackendContext,
    pub public_subnet_tags: Vec<Entry>,
    pub private_subnet_tags: Vec<Entry>,
    pub tags: Vec<Entry>,
    /// Where both images keep the database's CA bundle.
    pub rds_ca_bundle_path: &'static str,
    /// The service the listeners' default action forwards to.
    pub default_route: ServiceName,
    /// Each service's container health check command as a JSON array (Dockerfile
    /// HEALTHCHECK), the same command the task definition gives ECS.
    pub health_json: std::collections::BTreeMap<ServiceName, String>,
    /// The service's image carries the voice tutor's local engines: its VOICE_ENGINE is
    /// `local` or `auto` (see [`Environment::voice_engines`]).
    pub voice_engines: bool,
    /// The service's task role may call Transcribe Streaming and Polly (VOICE_ENGINE=aws).
    pub voice_aws: bool,
    /// The SSM parameter of ElastiCache's AUTH token.
    pub redis_auth_parameter: String,
    /// The container each task runs first to make the services' database roles.
    pub db_roles: DbRolesContext,
}

#[derive(Debug, Serialize)]
pub struct DbRolesContext {
    pub environment: Vec<Entry>,
    pub secrets: Vec<Entry>,
}

/// One `KEY = value` line of an HCL object, with `key` padded the way `terraform fmt`
/// aligns consecutive attributes.
#[derive(Debug, Serialize)]
pub struct Entry {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Serialize)]
pub struct ServiceContext<'a> {
    pub name: ServiceName,
    pub spec: &'a Service,
    /// Plain variables as HCL expressions: the YAML's plus those wired from resources.
    pub environment: Vec<Entry>,
    /// Variable → SSM parameter name; includes the database password.
    pub secrets: Vec<Entry>,
    /// The container's health check command, as an HCL list (task definition).
    pub health_command_hcl: String,
}

#[derive(Debug, Serialize)]
pub struct RuleContext<'a> {
    pub rule: &'a RoutingRule,
    /// `["/a/*", "/b"]`, quoted for HCL.
    pub paths_hcl: String,
}

#[derive(Debug, Serialize)]
pub struct BackendContext {
    pub kind: &'static str,
    pub settings: Vec<Entry>,
}

/// A value learntrac sets in every task definition: a literal, or a Terraform expression
/// that resolves to a deployed resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Wired {
    Literal(String),
    Terraform(&'static str),
}

impl Wired {
    pub fn hcl(&self) -> String {
        match self {
            Wired::Literal(s) => quote(s),
            Wired::Terraform(e) => (*e).to_string(),
        }
    }
}

impl std::fmt::Display for Wired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Wired::Literal(s) => f.write_str(s),
            Wired::Terraform(e) => write!(f, "${{{e}}}"),
        }
    }
}

/// Variables every task gets from the deployed resources (names listed in
/// `config::validate::WIRED_VARIABLES`).
pub fn wired_environment(env: &Environment, name: ServiceName) -> Vec<(&'static str, Wired)> {
    let svc = env.services.get(name);
    let mut wired = vec![
        ("DATABASE_HOST", Wired::Terraform("module.rds.address")),
        ("DATABASE_NAME", Wired::Literal(env.database.name.clone())),
        (
            "DATABASE_PORT",
            Wired::Terraform("tostring(module.rds.port)"),
        ),
        // Each service logs in as its own role, which the db-roles container makes.
        ("DATABASE_USER", Wired::Literal(db_role(name).into())),
        // RDS enforces TLS; both services verify its certificate and host name against
        // the CA bundle their images carry.
        ("DATABASE_SSLMODE", Wired::Literal("verify-full".into())),
        (
            "DATABASE_SSLROOTCERT",
            Wired::Literal(crate::config::RDS_CA_BUNDLE_PATH.into()),
        ),
        (
            "LEARNTRAC_ENVIRONMENT",
            Wired::Literal(env.environment.clone()),
        ),
        ("PORT", Wired::Literal(svc.port.to_string())),
    ];
    if name == ServiceName::Learntrac {
        // Trac does not use Redis: only the service is told where it is (and let in).
        wired.push(("REDIS_URL", Wired::Terraform("local.redis_url")));
    }
    if name == ServiceName::Trac {
        // TLS ends at the load balancer: Trac learns its public URL (for redirects and
        // Secure cookies) from here.
        let base = match (&env.deploy.public_url, env.tls.certificate_arn.is_some()) {
            (Some(url), _) => Wired::Literal(url.trim_end_matches('/').to_string()),
            (None, true) => Wired::Terraform("\"https://${module.alb.dns_name}\""),
            (None, false) => Wired::Terraform("\"http://${module.alb.dns_name}\""),
        };
        wired.push(("TRAC_BASE_URL", base));
    }
    wired.sort_by_key(|(k, _)| *k);
    wired
}

/// The command that tells whether a service's container is healthy: the image's
/// HEALTHCHECK and the task definition's (ECS ignores image health checks). Runtime images
/// carry no curl: the service probes itself, Trac's Python 2 fetches its health path.
/// The path is validated as a plain URL path, so it cannot leave the Python literal.
pub fn health_command(name: ServiceName) -> Vec<String> {
    match name {
        ServiceName::Learntrac => vec![
            "CMD".into(),
            "/usr/local/bin/learntrac-service".into(),
            "healthcheck".into(),
        ],
        // Liveness only: tracd accepts connections. The load balancer's check asks Trac for
        // a rendered page (database included); asking for one here too made a busy tracd
        // miss this 4 s timeout, and ECS killed healthy tasks under load.
        ServiceName::Trac => vec![
            "CMD".into(),
            "python".into(),
            "-c".into(),
            "import os, socket; socket.create_connection(('127.0.0.1', int(os.environ['PORT'])), 4).close()".into(),
        ],
    }
}

/// The database role a service logs in as.
pub fn db_role(name: ServiceName) -> &'static str {
    use learntrac_service::db::roles::{SERVICE_ROLE, TRAC_ROLE};
    match name {
        ServiceName::Trac => TRAC_ROLE,
        ServiceName::Learntrac => SERVICE_ROLE,
    }
}

/// Variable → SSM parameter name pairs.
pub type SecretPairs = Vec<(String, String)>;

/// The db-roles container's variables (the database's address and TLS as the services
/// get them, the master user, both roles' names) and secrets (the master password and
/// both roles' passwords). It is the same in both services' tasks.
pub fn db_roles_container(env: &Environment) -> (Vec<(&'static str, Wired)>, SecretPairs) {
    let mut vars: Vec<(&'static str, Wired)> = wired_environment(env, ServiceName::Trac)
        .into_iter()
        .filter(|(k, _)| k.starts_with("DATABASE_"))
        .map(|(k, v)| match k {
            "DATABASE_USER" => (k, Wired::Literal(env.database.username.clone())),
            _ => (k, v),
        })
        .collect();
    vars.push(("LOG_FORMAT", Wired::Literal("json".into())));
    vars.push((
        "TRAC_DB_USER",
        Wired::Literal(db_role(ServiceName::Trac).into()),
    ));
    vars.push((
        "SERVICE_DB_USER",
        Wired::Literal(db_role(ServiceName::Learntrac).into()),
    ));
    vars.sort_by_key(|(k, _)| *k);
    let secrets = vec![
        (
            "DATABASE_PASSWORD".to_string(),
            env.database.password_parameter.clone(),
        ),
        (
            "SERVICE_DB_PASSWORD".to_string(),
            env.db_role_parameter(ServiceName::Learntrac),
        ),
        (
            "TRAC_DB_PASSWORD".to_string(),
            env.db_role_parameter(ServiceName::Trac),
        ),
    ];
    (vars, secrets)
}

/// Every secret a service's task reads: its app container's, then its db-roles
/// container's (as `VAR (db-roles)`).
pub fn task_secrets(env: &Environment, name: ServiceName) -> Vec<(String, String)> {
    let mut all = secrets_of(env, name);
    all.extend(
        db_roles_container(env)
            .1
            .into_iter()
            .map(|(k, v)| (format!("{k} (db-roles)"), v)),
    );
    all
}

/// Every secret a service's app container receives: variable → SSM parameter name.
pub fn secrets_of(env: &Environment, name: ServiceName) -> Vec<(String, String)> {
    let svc = env.services.get(name);
    let mut all = vec![("DATABASE_PASSWORD".to_string(), env.db_role_parameter(name))];
    if name == ServiceName::Learntrac {
        all.push(("REDIS_AUTH_TOKEN".to_string(), env.redis_auth_parameter()));
    }
    all.extend(svc.secrets.iter().map(|(k, v)| (k.clone(), v.clone())));
    all.sort();
    all
}

fn aligned(pairs: Vec<(String, String)>) -> Vec<Entry> {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    pairs
        .into_iter()
        .map(|(k, value)| Entry {
            key: format!("{k:width$}"),
            value,
        })
        .collect()
}

fn quoted_map<'a>(m: impl IntoIterator<Item = (&'a String, &'a String)>) -> Vec<Entry> {
    aligned(m.into_iter().map(|(k, v)| (hcl_key(k), quote(v))).collect())
}

/// Bare identifiers stay bare; anything else (tag keys such as `aws:x`) is quoted.
fn hcl_key(k: &str) -> String {
    let bare = k.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare { k.to_string() } else { quote(k) }
}

impl<'a> RenderContext<'a> {
    pub fn new(env: &'a Environment) -> Self {
        let services = env
            .services
            .iter()
            .map(|(name, spec)| {
                let mut vars: Vec<(String, String)> = wired_environment(env, name)
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.hcl()))
                    .collect();
                vars.extend(spec.environment.iter().map(|(k, v)| (k.clone(), quote(v))));
                vars.sort();
                let secrets = secrets_of(env, name)
                    .into_iter()
                    .map(|(k, v)| (k, quote(&v)))
                    .collect();
                let health_command_hcl = format!(
                    "[{}]",
                    health_command(name)
                        .iter()
                        .map(|a| quote(a))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                ServiceContext {
                    name,
                    spec,
                    environment: aligned(vars),
                    secrets: aligned(secrets),
                    health_command_hcl,
                }
            })
            .collect();
        let mut rules: Vec<RuleContext> = env
            .routing
            .iter()
            .map(|rule| RuleContext {
                rule,
                paths_hcl: format!(
                    "[{}]",
                    rule.paths
                        .iter()
                        .map(|p| quote(p))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
            .collect();
        rules.sort_by_key(|r| r.rule.priority);
        let backend = match &env.terraform.s3 {
            None => BackendContext {
                kind: "local",
                settings: aligned(vec![("path".into(), quote("terraform.tfstate"))]),
            },
            Some(s3) => {
                let mut s = vec![
                    ("bucket".to_string(), quote(&s3.bucket)),
                    ("key".to_string(), quote(&s3.key)),
                    (
                        "region".to_string(),
                        quote(s3.region.as_deref().unwrap_or(&env.aws.region)),
                    ),
                    ("encrypt".to_string(), "true".to_string()),
                ];
                match &s3.lock_table {
                    Some(t) => s.push(("dynamodb_table".into(), quote(t))),
                    None => s.push(("use_lockfile".into(), "true".into())),
                }
                // An AWS stand-in (moto in tests) serves S3 by path and has no STS or IMDS
                // worth asking.
                if let Some(url) = &env.aws.endpoint {
                    s.push(("endpoints".into(), format!("{{ s3 = {} }}", quote(url))));
                    for flag in [
                        "use_path_style",
                        "skip_credentials_validation",
                        "skip_requesting_account_id",
                        "skip_metadata_api_check",
                        "skip_region_validation",
                    ] {
                        s.push((flag.into(), "true".into()));
                    }
                }
                BackendContext {
                    kind: "s3",
                    settings: aligned(s),
                }
            }
        };
        let tags = [
            ("Project", env.project.as_str()),
            ("Environment", env.environment.as_str()),
            ("ManagedBy", "learntrac"),
        ];
        RenderContext {
            env,
            prefix: env.name_prefix(),
            production: env.is_production(),
            tls: env.tls.certificate_arn.is_some(),
            rds_ca_bundle_path: crate::config::RDS_CA_BUNDLE_PATH,
            default_route: ServiceName::DEFAULT_ROUTE,
            health_json: env
                .services
                .iter()
                .map(|(name, _)| {
                    let cmd = health_command(name);
                    // Dockerfile exec form: everything after "CMD".
                    (name, serde_json::to_string(&cmd[1..]).unwrap_or_default())
                })
                .collect(),
            voice_engines: env.voice_engines(),
            voice_aws: env.voice_aws(),
            redis_auth_parameter: env.redis_auth_parameter(),
            db_roles: {
                let (vars, secrets) = db_roles_container(env);
                DbRolesContext {
                    environment: aligned(
                        vars.into_iter()
                            .map(|(k, v)| (k.to_string(), v.hcl()))
                            .collect(),
                    ),
                    secrets: aligned(secrets.into_iter().map(|(k, v)| (k, quote(&v))).collect()),
                }
            },
            services,
            rules,
            backend,
            public_subnet_tags: quoted_map(&env.network.public_subnet_tags),
            private_subnet_tags: quoted_map(&env.network.private_subnet_tags),
            tags: aligned(
                tags.iter()
                    .map(|(k, v)| (k.to_string(), quote(v)))
                    .collect(),
            ),
        }
    }
}
