//! The environment model: one YAML file per environment drives Terraform, the Dockerfiles,
//! the ALB listener rules and the local router. Every struct rejects unknown keys so a typo
//! is an error rather than a silently ignored setting.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize)]
pub struct Environment {
    pub project: String,
    pub environment: String,
    pub aws: Aws,
    pub network: Network,
    pub services: Services,
    pub routing: Vec<RoutingRule>,
    pub database: Database,
    pub cache: Cache,
    pub tls: Tls,
    pub monitoring: Monitoring,
    pub terraform: TerraformSettings,
    pub images: BaseImages,
    pub registry: Option<String>,
    pub local: LocalStack,
    pub deploy: DeploySettings,
}

impl Environment {
    /// `learntrac-dev`: the prefix of every AWS resource name.
    pub fn name_prefix(&self) -> String {
        format!("{}-{}", self.project, self.environment)
    }

    /// The service's image carries the voice tutor's local engines (espeak-ng, PocketSphinx):
    /// its VOICE_ENGINE asks for them (`local`) or uses them when present (`auto`).
    pub fn voice_engines(&self) -> bool {
        matches!(
            self.services
                .get(ServiceName::Learntrac)
                .environment
                .get("VOICE_ENGINE")
                .map(String::as_str),
            Some("local" | "auto")
        )
    }

    /// The service's tasks speak through Amazon Transcribe Streaming and Polly
    /// (VOICE_ENGINE=aws): its task role gets their permissions.
    pub fn voice_aws(&self) -> bool {
        self.services
            .get(ServiceName::Learntrac)
            .environment
            .get("VOICE_ENGINE")
            .is_some_and(|v| v == "aws")
    }

    /// Production environments must serve TLS, run a multi-AZ database and protect
    /// their load balancer and database from deletion.
    pub fn is_production(&self) -> bool {
        self.environment == "prod"
    }

    /// Where `learntrac secrets` keeps this environment's parameters.
    pub fn ssm_prefix(&self) -> String {
        format!("/{}/{}", self.project, self.environment)
    }

    /// The password of a service's own database role (the db-roles container sets it;
    /// bootstrap generates it).
    pub fn db_role_parameter(&self, name: ServiceName) -> String {
        match name {
            ServiceName::Trac => format!("{}/db/trac-password", self.ssm_prefix()),
            ServiceName::Learntrac => format!("{}/db/service-password", self.ssm_prefix()),
        }
    }

    /// ElastiCache's AUTH token: made by bootstrap, read by Terraform for the replication
    /// group and by the service's tasks as REDIS_AUTH_TOKEN.
    pub fn redis_auth_parameter(&self) -> String {
        format!("{}/redis/auth-token", self.ssm_prefix())
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Aws {
    pub region: String,
    #[serde(default)]
    pub account_id: Option<String>,
    /// Sends every AWS API call (SDK and Terraform provider) to one endpoint, e.g. moto.
    #[serde(default)]
    pub endpoint: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// `default` for the account's default VPC, or a VPC id.
    pub vpc: String,
    /// Tags that select the load balancer's subnets; empty selects every subnet of the VPC.
    #[serde(default)]
    pub public_subnet_tags: BTreeMap<String, String>,
    /// Tags that select the tasks', database's and cache's subnets; empty selects every subnet.
    #[serde(default)]
    pub private_subnet_tags: BTreeMap<String, String>,
    /// Tasks in a default VPC have no NAT gateway and need a public IP to reach ECR and SSM.
    #[serde(default)]
    pub assign_public_ip: bool,
    /// Seconds a connection through the load balancer may sit idle (AWS: 1–4000, default 60);
    /// the local router keeps the same limit.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: u32,
}

fn default_idle_timeout() -> u32 {
    60
}

impl Network {
    pub fn uses_default_vpc(&self) -> bool {
        self.vpc == "default"
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Services {
    pub trac: Service,
    pub learntrac: Service,
}

impl Services {
    pub fn iter(&self) -> impl Iterator<Item = (ServiceName, &Service)> {
        [
            (ServiceName::Trac, &self.trac),
            (ServiceName::Learntrac, &self.learntrac),
        ]
        .into_iter()
    }

    pub fn get(&self, name: ServiceName) -> &Service {
        match name {
            ServiceName::Trac => &self.trac,
            ServiceName::Learntrac => &self.learntrac,
        }
    }
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Deserialize,
    Serialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum ServiceName {
    Trac,
    Learntrac,
}

impl ServiceName {
    pub const ALL: [ServiceName; 2] = [ServiceName::Trac, ServiceName::Learntrac];

    /// Where the load balancer sends a path no rule matches: Trac, the legacy catch-all.
    /// Trac's own links (`/`, `/wiki`, `/timeline`, `/newticket`, `/milestone/NAME`, …)
    /// are too many and too open-ended to list; LearnTrac's paths are few and explicit.
    pub const DEFAULT_ROUTE: ServiceName = ServiceName::Trac;

    pub fn as_str(self) -> &'static str {
        match self {
            ServiceName::Trac => "trac",
            ServiceName::Learntrac => "learntrac",
        }
    }
}

impl std::fmt::Display for ServiceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Build context, relative to the repository root.
    pub context: String,
    pub port: u16,
    /// Fargate vCPU units (1024 = 1 vCPU).
    pub cpu: u32,
    /// Fargate memory in MiB.
    pub memory: u32,
    pub count: Count,
    #[serde(default = "default_cpu_target")]
    pub autoscaling_cpu_target: f64,
    pub health_check: HealthCheck,
    #[serde(default)]
    pub stickiness: Option<Stickiness>,
    /// Plain environment variables. Never secrets: those go under `secrets`.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// Variable name → SSM parameter name (SecureString); injected with `valueFrom`.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
}

fn default_cpu_target() -> f64 {
    70.0
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Count {
    pub desired: u32,
    pub min: u32,
    pub max: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    pub path: String,
    #[serde(default = "default_matcher")]
    pub matcher: String,
    #[serde(default = "default_interval")]
    pub interval: u32,
    #[serde(default = "default_timeout")]
    pub timeout: u32,
    #[serde(default = "default_threshold")]
    pub healthy_threshold: u32,
    #[serde(default = "default_threshold")]
    pub unhealthy_threshold: u32,
    /// Seconds ECS ignores failing health checks after a task starts.
    #[serde(default = "default_grace_period")]
    pub grace_period: u32,
}

fn default_matcher() -> String {
    "200".into()
}
fn default_interval() -> u32 {
    30
}
fn default_timeout() -> u32 {
    5
}
fn default_threshold() -> u32 {
    2
}
fn default_grace_period() -> u32 {
    60
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Stickiness {
    /// Seconds the load balancer cookie keeps a browser on one task.
    pub duration: u32,
}

/// One ALB listener rule; the local router applies the same list.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingRule {
    pub priority: u32,
    pub service: ServiceName,
    pub paths: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    pub engine_version: String,
    pub instance_class: String,
    pub allocated_storage: u32,
    #[serde(default)]
    pub max_allocated_storage: Option<u32>,
    pub name: String,
    pub username: String,
    /// SSM SecureString holding the master password; read ephemerally, never stored in state.
    pub password_parameter: String,
    /// Bump to make Terraform send a rotated password to RDS.
    #[serde(default = "default_password_version")]
    pub password_version: u32,
    #[serde(default)]
    pub multi_az: bool,
    #[serde(default = "default_backup_retention")]
    pub backup_retention_days: u32,
    /// Where image builds fetch the CA bundle that RDS certificates chain to; both images
    /// carry it at `RDS_CA_BUNDLE_PATH` and verify the database against it.
    #[serde(default = "default_ca_bundle_url")]
    pub ca_bundle_url: String,
}

/// Where both images keep the database's CA bundle (`database.ca_bundle_url`).
pub const RDS_CA_BUNDLE_PATH: &str = "/etc/ssl/certs/rds-ca-bundle.pem";

fn default_ca_bundle_url() -> String {
    // AWS's published trust store for RDS, all regions.
    "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem".into()
}

fn default_password_version() -> u32 {
    1
}
fn default_backup_retention() -> u32 {
    7
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Cache {
    pub node_type: String,
    #[serde(default = "default_redis_version")]
    pub engine_version: String,
    /// Cache nodes; two or more enable automatic failover across AZs.
    #[serde(default = "default_nodes")]
    pub nodes: u32,
    #[serde(default)]
    pub snapshot_retention_days: u32,
}

fn default_redis_version() -> String {
    "7.1".into()
}
fn default_nodes() -> u32 {
    1
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// ACM certificate; without one the environment serves HTTP only.
    #[serde(default)]
    pub certificate_arn: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Monitoring {
    #[serde(default)]
    pub alert_email: Option<String>,
    #[serde(default = "default_log_retention")]
    pub log_retention_days: u32,
    #[serde(default)]
    pub alarms: Alarms,
}

fn default_log_retention() -> u32 {
    30
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Alarms {
    pub cpu_percent: f64,
    pub memory_percent: f64,
    pub alb_5xx_per_minute: u32,
    pub db_cpu_percent: f64,
    pub db_free_storage_gb: u32,
}

impl Default for Alarms {
    fn default() -> Self {
        Alarms {
            cpu_percent: 80.0,
            memory_percent: 85.0,
            alb_5xx_per_minute: 10,
            db_cpu_percent: 80.0,
            db_free_storage_gb: 5,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TerraformSettings {
    pub backend: BackendKind,
    /// Required when `backend: s3`.
    #[serde(default)]
    pub s3: Option<S3Backend>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// State in the rendered directory: for throwaway environments only.
    Local,
    S3,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct S3Backend {
    pub bucket: String,
    pub key: String,
    #[serde(default)]
    pub region: Option<String>,
    /// DynamoDB lock table; without one, Terraform's S3-native lock file is used.
    #[serde(default)]
    pub lock_table: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BaseImages {
    /// Base of the Trac image (Python 2.7).
    pub trac_base: String,
    /// Toolchain stage of the service image.
    pub rust_builder: String,
    /// Runtime stage of the service image.
    pub service_runtime: String,
    #[serde(default = "default_platform")]
    pub platform: String,
}

fn default_platform() -> String {
    "linux/amd64".into()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LocalStack {
    /// Port of the local router that stands in for the ALB.
    pub router_port: u16,
    pub postgres_image: String,
    pub redis_image: String,
    /// Seconds each container may take to become healthy.
    pub health_timeout: u64,
}

impl Default for LocalStack {
    fn default() -> Self {
        LocalStack {
            router_port: 8080,
            postgres_image: "postgres:15".into(),
            redis_image: "redis:7-alpine".into(),
            health_timeout: 180,
        }
    }
}

/// How `learntrac deploy` waits and verifies.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeploySettings {
    /// Seconds to wait for both rollouts to complete.
    pub rollout_timeout: u64,
    /// Seconds to wait for healthy targets and answering paths after the rollouts.
    pub verify_timeout: u64,
    /// Seconds `terraform apply` may take (some provider waiters hang instead of failing).
    pub terraform_timeout: u64,
    /// Where the probe sends its requests instead of the load balancer's DNS name, e.g. a
    /// custom domain in front of it (`https://learn.example.edu`).
    pub public_url: Option<String>,
}

impl Default for DeploySettings {
    fn default() -> Self {
        DeploySettings {
            rollout_timeout: 900,
            verify_timeout: 300,
            terraform_timeout: 3600,
            public_url: None,
        }
    }
}
