//! Command-line definitions only; behaviour lives in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXAMPLES: &str = "\
Examples:
  learntrac config validate              check every environment file
  learntrac config show prod -o json     resolved settings (secrets as SSM names only)
  learntrac render dev                   write Terraform and Dockerfiles to .learntrac/dev/
  learntrac render prod --out build/prod --templates my-templates/

  learntrac push dev                     build both images concurrently and push them
  learntrac deploy dev                   preflight, build, push, terraform, roll out, verify
  learntrac deploy prod --dry-run        preflight, render and plan only
  learntrac status dev --watch
  learntrac local up --seed-demo         the whole stack on this machine

Exit codes: 0 success, 1 unexpected failure, 2 usage or configuration error,
3 a prerequisite is missing (Docker, AWS credentials, terraform, a secret), 4 an image
build or push failed, 5 terraform failed, 6 a rollout failed or was rolled back,
7 a timeout, 130 interrupted.";

#[derive(Debug, Parser)]
#[command(
    name = "learntrac",
    version,
    about = "Render, build, deploy and run the Trac + LearnTrac stack",
    long_about = "learntrac replaces deploy.sh and setup-local.sh: one environment file per \
                  environment (environments/NAME.yaml) drives the Terraform, the Dockerfiles, \
                  the load balancer's routing and the local stack.",
    after_help = EXAMPLES
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Project root holding environments/ (default: the nearest parent folder that has one)
    #[arg(long, global = true, env = "LEARNTRAC_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Output format: human-readable text, one JSON document on stdout, or JSON lines
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,

    /// Print less: only errors
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,

    /// Show the full cause chain of an error (the AWS SDK's, for one)
    #[arg(long, short = 'v', global = true)]
    pub verbose: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Human,
    Json,
    /// One JSON event per line while working (deploy), then the result as the last line
    Jsonl,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check and inspect environment files
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Render Terraform and Dockerfiles for an environment
    #[command(
        after_help = "Examples:\n  learntrac render dev\n  learntrac render prod --out build/prod\n  learntrac render dev --templates my-templates/   # files there replace the built-in ones"
    )]
    Render(RenderArgs),
    /// Build both images (concurrently) through the Docker Engine API
    #[command(
        after_help = "Examples:\n  learntrac build dev\n  learntrac build dev --only learntrac\n  learntrac build local -o json\n\nTags: the git commit (plus -dirty-<hash> of uncommitted changes) and the environment name.\nExit codes: 3 Docker Engine unreachable, 4 a build failed (nothing is pushed)."
    )]
    Build(ImageArgs),
    /// Build (unless --skip-build) and push both images to ECR or the environment's registry
    #[command(
        after_help = "Examples:\n  learntrac push dev\n  learntrac push dev --skip-build -o json\n\nExit codes: 3 Docker or AWS credentials missing, 4 a build or push failed."
    )]
    Push(PushArgs),
    /// Build (and with --push, push) learntrac as a container image for CI: this binary,
    /// terraform and the AWS provider the stack's lock file names
    #[command(
        name = "cli-image",
        after_help = "Examples:\n  learntrac cli-image dev --push\n  learntrac cli-image dev --binary target/release/learntrac --plugin-dir /opt/tf-plugins -o json\n\nThe image carries the binary given (by default this one): build it on the image's platform (linux/amd64).\nThe provider comes from a filesystem mirror: --plugin-dir, LEARNTRAC_TF_PLUGIN_DIR, or make one with\n`terraform providers mirror -platform=linux_amd64 DIR` in .learntrac/ENV/terraform.\nIt is pushed to the repository PROJECT-cli (made when missing), tagged with the commit and vVERSION.\nIn CI: docker run -v /var/run/docker.sock:/var/run/docker.sock -v \"$PWD:/work\" IMAGE deploy dev --yes\nExit codes: 3 Docker Engine, terraform or AWS credentials missing, 4 the build or push failed."
    )]
    CliImage(CliImageArgs),
    /// Create what a first deploy needs and Terraform cannot: the state bucket, the secrets
    #[command(after_help = BOOTSTRAP_HELP)]
    Bootstrap(BootstrapArgs),
    /// What the services' tasks wrote (CloudWatch Logs), merged across tasks, newest last
    #[command(
        after_help = "Examples:\n  learntrac logs dev\n  learntrac logs dev trac --since 1h\n  learntrac logs dev learntrac -f\n  learntrac logs dev --task 0f3c9a1e -o json\n\nEach line: time, service, task id (first 8 characters), message. --since takes 30s, 10m, 2h or 1d.\nExit codes: 0, 2 usage, 3 no AWS credentials."
    )]
    Logs(LogsArgs),
    /// Take an environment's stack down (plan, list, confirm, destroy; say what remains)
    #[command(after_help = DESTROY_HELP)]
    Destroy(DestroyArgs),
    /// Deploy an environment: preflight, render, build and push, terraform, roll out, verify
    #[command(after_help = DEPLOY_HELP)]
    Deploy(DeployArgs),
    /// Run an earlier release again: the revision before, a given one, or a commit's images
    #[command(after_help = ROLLBACK_HELP)]
    Rollback(RollbackArgs),
    /// The local LearnTrac stack, routed exactly like the load balancer
    #[command(subcommand)]
    Local(LocalCommand),
    /// SSM SecureString secrets under the environment's prefix (/PROJECT/ENV/)
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Trac's logins (the TRAC_HTDIGEST secret): load a school's roster, list, remove
    #[command(subcommand)]
    People(PeopleCommand),
    /// Services, deployments, events, images, target health and secrets of an environment
    #[command(
        after_help = "Examples:\n  learntrac status dev\n  learntrac status prod --watch\n  learntrac status dev -o json"
    )]
    Status(StatusArgs),
}

const BOOTSTRAP_HELP: &str = "\
Examples:
  learntrac bootstrap dev                      check only: what exists, what is missing
  learntrac bootstrap dev --yes --trac-admin admin
                                               create it all (the admin's password is asked)
  printf %s \"$PW\" | learntrac bootstrap dev --yes --trac-admin admin --password-stdin

Items: the Terraform state bucket (versioning, default encryption, public access blocked,
a policy denying non-TLS requests, replaced versions expiring after 90 days; locking by
Terraform's S3 lock file) and every SSM parameter the task definitions read: the database
password and the token secret are generated, Trac's htdigest line is computed from the
administrator you name. Values are never printed. Running it again changes nothing.

Exit codes: 0 everything is in place, 2 usage or configuration, 3 something is still
missing or wrong (each with its fix), or no AWS credentials.";

const DESTROY_HELP: &str = "\
Examples:
  learntrac destroy dev                        list what goes; type `dev` to go on
  learntrac destroy dev --yes -o json          in CI (after reading the list)
  learntrac destroy dev --yes --images --secrets
                                               also the ECR repositories and the SSM secrets
  learntrac destroy prod --allow-production    production needs both this and a confirmation

Kept unless asked: the ECR repositories with their images (Terraform forgets them; the next
deploy adopts them again) and the SSM secrets. Always kept: the state bucket, and for
production the database's final snapshot. Production's database and load balancer have
deletion protection: lift it first (the command shows how), or Terraform stops there.

Exit codes: 0 destroyed, 2 not confirmed or production without --allow-production
(nothing changed), 3 preflight (AWS identity, terraform), 5 terraform failed.";

const ROLLBACK_HELP: &str = "\
Examples:
  learntrac rollback dev                       each service to the revision before the one it runs
  learntrac rollback dev --only learntrac      one service
  learntrac rollback dev --to 1a2b3c4d5e6f     the newest revisions running that commit's images
  learntrac rollback dev --only trac --to 7    revision 7 of trac's task definition
  learntrac rollback prod --yes -o json        in CI: no question

The services move through ECS (task definitions are kept by Terraform's skip_destroy),
then it waits and verifies as deploy does. Nothing undoes a rollback but the next deploy of
that service: Terraform ignores which task definition a service runs, and a deploy of
another service (--only) keeps the image this one runs.

Exit codes: 0 rolled back (or already there), 2 usage or not confirmed (nothing changed),
3 preflight (AWS identity, no service, a deployment in progress, nothing earlier to go to),
6 the rollout failed or does not serve, 7 timeout, 130 interrupted.";

const DEPLOY_HELP: &str = "\
Examples:
  learntrac deploy dev                         everything, asking before a plan that destroys
  learntrac deploy dev --dry-run               preflight, render and plan; changes nothing
  learntrac deploy dev --only learntrac        build, push and roll out one service
  learntrac deploy prod --yes -o jsonl         in CI: JSON events, no questions

Phases: preflight, render, build and push, terraform (init, plan, apply), redeploy, wait
for both rollouts, verify (target health, HTTP probe of every routed path), summary.
When the rendered Terraform is what the last successful apply left (only images change),
Terraform is skipped: the fast path (say --full to run it anyway).
When CI is set or stderr is not a terminal, progress is plain timestamped lines.

Exit codes: 2 usage or configuration, 3 preflight (Docker, AWS identity or account,
terraform, a missing secret, a deployment already in progress), 4 build or push,
5 terraform (or a destructive plan not confirmed), 6 rollout failed, rolled back or not
serving, 7 timeout, 130 interrupted (ECS keeps serving the previous version until the
new one is healthy).";

#[derive(Debug, Args)]
pub struct BootstrapArgs {
    /// Environment name (environments/NAME.yaml)
    pub env: String,
    /// Create and change what is missing (without it: check and report only)
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Trac's first administrator, for the htdigest secret (the password is asked for)
    #[arg(long, value_name = "USER")]
    pub trac_admin: Option<String>,
    /// Read that administrator's password from stdin instead of a prompt
    #[arg(long, requires = "trac_admin")]
    pub password_stdin: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Environment name (environments/NAME.yaml)
    pub env: String,
    /// Only this service (default: both)
    #[arg(value_enum)]
    pub service: Option<crate::config::ServiceName>,
    /// Keep printing new lines as they arrive (Ctrl-C stops)
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// How far back to start: 30s, 10m, 2h, 1d
    #[arg(long, default_value = "10m", value_parser = parse_since)]
    pub since: u64,
    /// Only the task whose id starts with this
    #[arg(long, value_name = "ID")]
    pub task: Option<String>,
}

/// `30s`, `10m`, `2h`, `1d` → seconds.
fn parse_since(s: &str) -> Result<u64, String> {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = n
        .parse()
        .map_err(|_| format!("`{s}`: a number and s, m, h or d"))?;
    let mult = match unit {
        "s" | "" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{s}`: the unit is s, m, h or d")),
    };
    Ok(n * mult)
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    /// Environment name (environments/NAME.yaml)
    pub env: String,
    /// Do not ask: the environment's name need not be typed
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Allow destroying a production environment
    #[arg(long)]
    pub allow_production: bool,
    /// Delete the ECR repositories and their images too
    #[arg(long)]
    pub images: bool,
    /// Delete the environment's SSM parameters too
    #[arg(long)]
    pub secrets: bool,
    /// Folder whose files replace the built-in templates
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Environment name (environments/NAME.yaml)
    pub env: String,
    /// Preflight, render and terraform plan only: no build, push, apply or redeploy
    #[arg(long)]
    pub dry_run: bool,
    /// Push what an earlier `learntrac build` made for this commit
    #[arg(long)]
    pub skip_build: bool,
    /// Run Terraform even when the infrastructure is what the last apply left
    #[arg(long)]
    pub full: bool,
    /// Build, push, redeploy and wait for this service only
    #[arg(long, value_enum)]
    pub only: Option<crate::config::ServiceName>,
    /// Stop after starting the rollouts (no wait, no verify)
    #[arg(long)]
    pub no_wait: bool,
    /// Seconds to wait for the rollouts [default: deploy.rollout_timeout or 900]
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Apply without asking, even a plan that destroys something (for CI)
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Start even while a deployment of the same service is still in progress
    #[arg(long)]
    pub force: bool,
    /// Folder whose files replace the built-in templates
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// Milliseconds between ECS and target-health polls
    #[arg(long, default_value_t = 3000, hide = true)]
    pub poll_ms: u64,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Environment name (environments/NAME.yaml)
    pub env: String,
    /// Only this service (default: both)
    #[arg(long, value_enum)]
    pub only: Option<crate::config::ServiceName>,
    /// A task-definition revision number (with --only), or a git commit or image tag whose
    /// images to run again [default: the revision before the one running]
    #[arg(long, value_name = "REVISION|COMMIT")]
    pub to: Option<String>,
    /// Show what would move; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Stop after starting the rollouts (no wait, no verify)
    #[arg(long)]
    pub no_wait: bool,
    /// Seconds to wait for the rollouts [default: deploy.rollout_timeout or 900]
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Milliseconds between ECS and target-health polls
    #[arg(long, default_value_t = 3000, hide = true)]
    pub poll_ms: u64,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Environment name (environments/NAME.yaml)
    pub env: String,
    /// Refresh until Ctrl-C
    #[arg(long)]
    pub watch: bool,
    /// Seconds between refreshes with --watch
    #[arg(long, default_value_t = 5)]
    pub interval: u64,
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Store a secret; the value comes from stdin or a hidden prompt, never the command line
    #[command(
        after_help = "Examples:\n  learntrac secrets set dev db/password            # prompts, input hidden\n  openssl rand -hex 32 | learntrac secrets set dev token-secret"
    )]
    Set {
        env: String,
        /// Name under the prefix (db/password) or the full path (/learntrac/dev/db/password)
        name: String,
    },
    /// Show a secret's version and date; the value only with --reveal
    Get {
        env: String,
        name: String,
        /// Print the decrypted value
        #[arg(long)]
        reveal: bool,
    },
    /// Names, versions and dates under the prefix, and which secrets the tasks need but lack
    /// (exit 3 when one is missing); never values
    List { env: String },
    /// Delete a secret
    Delete { env: String, name: String },
}

#[derive(Debug, Subcommand)]
pub enum PeopleCommand {
    /// Give every person of a roster who has none a login (a new password each, written
    /// once to a private file); those who have one keep it
    #[command(after_help = PEOPLE_IMPORT_HELP)]
    Import {
        env: String,
        /// The roster: CSV with a header row naming `login` (or `username`) and,
        /// optionally, `role` (student or teacher)
        roster: PathBuf,
        /// Where the new people's passwords go (made with mode 600; never over a file)
        /// [default: ROSTER-passwords.csv beside the roster]
        #[arg(long, value_name = "FILE")]
        passwords: Option<PathBuf>,
        /// Say who would be added; change nothing
        #[arg(long)]
        dry_run: bool,
        /// Replace Trac's tasks now, so the logins work at once (Trac reads them at start)
        #[arg(long)]
        restart: bool,
    },
    /// The logins Trac accepts (names only) and how full the secret is
    List { env: String },
    /// Take logins away (not the administrator's, the first)
    Remove {
        env: String,
        #[arg(required = true)]
        logins: Vec<String>,
        /// Replace Trac's tasks now, so the logins stop working at once
        #[arg(long)]
        restart: bool,
    },
}

const PEOPLE_IMPORT_HELP: &str = "\
Examples:
  learntrac people import dev class-7b.csv --dry-run
  learntrac people import dev class-7b.csv --restart    # passwords in class-7b-passwords.csv
  learntrac people list dev -o json
  learntrac people remove dev alice bob --restart

The roster, as a school's systems export it:
  login,name,role
  alice,\"Smith, Alice\",student
  carol,Carol Jones,teacher

Rows with a problem are all named (file:line:col) and nothing changes. Logins live in one
SSM SecureString (the environment's TRAC_HTDIGEST): at most 8 KB, about 150 people.
Teachers are then put in Trac's `teachers` group by the administrator (Admin → Permissions).
Exit codes: 0, 2 a problem in the roster or a login too many, 3 no AWS credentials, no
administrator yet, or the passwords file exists.";

#[derive(Debug, Subcommand)]
pub enum LocalCommand {
    /// Bring the stack up (in the foreground; Ctrl-C stops it)
    #[command(
        after_help = "Examples:\n  learntrac local up --seed-demo\n  learntrac local up --port 9090\n  learntrac local up --service container   # the service's own image, as ECS runs it\n\nWith a Docker Engine: PostgreSQL, Redis and Trac in containers (network and volumes\nlearntrac-local-*), recreated only when their configuration changes; the service\nin-process (or --service container); the router in front, routing like the ALB.\nWithout a Docker Engine, without a checkout, with images that cannot be had, or with\n--embedded: the service in-process on a SQLite database with Trac's schema, and Trac 1.6\nitself on the machine's Python 3 (installed into ~/.cache/learntrac/trac-1.6 on first use)."
    )]
    Up(LocalUpArgs),
    /// Show each component's state, health and ports
    Ps,
    /// Stop the stack; data is kept unless --volumes
    Down {
        /// Also delete the stack's data
        #[arg(long)]
        volumes: bool,
    },
    /// Print a component's log: the in-process service's (default) or a container's
    #[command(
        after_help = "Examples:\n  learntrac local logs\n  learntrac local logs trac -f\n  learntrac local logs postgres"
    )]
    Logs {
        /// The component whose log to show (default: the in-process service's)
        #[arg(value_enum)]
        component: Option<LocalComponent>,
        /// Keep printing new lines
        #[arg(long, short = 'f')]
        follow: bool,
    },
}

/// A component of the local stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LocalComponent {
    Postgres,
    Redis,
    Trac,
    Learntrac,
}

impl LocalComponent {
    pub fn as_str(self) -> &'static str {
        match self {
            LocalComponent::Postgres => "postgres",
            LocalComponent::Redis => "redis",
            LocalComponent::Trac => "trac",
            LocalComponent::Learntrac => "learntrac",
        }
    }
}

#[derive(Debug, Args)]
pub struct LocalUpArgs {
    /// Run the embedded runtime even where a Docker Engine is reachable
    #[arg(long)]
    pub embedded: bool,
    /// Add demo concepts, milestones, students and practice history (only to an empty database)
    #[arg(long)]
    pub seed_demo: bool,
    /// Router port [default: local.router_port of environments/local.yaml]
    #[arg(long)]
    pub port: Option<u16>,
    /// Folder whose files replace the built-in templates (e.g. Trac's Dockerfile)
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// Docker runtime: the LearnTrac service in this process (fast edit-run loop) or as its
    /// container (what ECS runs)
    #[arg(long, value_enum, default_value_t = ServiceMode::InProcess)]
    pub service: ServiceMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ServiceMode {
    InProcess,
    Container,
}

#[derive(Debug, Args)]
pub struct ImageArgs {
    /// Environment name (environments/NAME.yaml)
    pub env: String,

    /// Only this service's image
    #[arg(long, value_enum)]
    pub only: Option<crate::config::ServiceName>,

    /// Folder whose files replace the built-in templates (e.g. substitute Dockerfiles)
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CliImageArgs {
    /// Environment name (environments/NAME.yaml): its registry and base image
    pub env: String,

    /// The learntrac binary the image carries [default: this one]
    #[arg(long, value_name = "FILE")]
    pub binary: Option<PathBuf>,

    /// A filesystem mirror holding the providers of the stack's lock file
    #[arg(long, value_name = "DIR", env = "LEARNTRAC_TF_PLUGIN_DIR")]
    pub plugin_dir: Option<PathBuf>,

    /// Push the image to the environment's registry (ECR, or `registry:`)
    #[arg(long)]
    pub push: bool,

    /// Folder whose files replace the built-in templates
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    #[command(flatten)]
    pub image: ImageArgs,

    /// Push what an earlier `learntrac build` made for this commit
    #[arg(long)]
    pub skip_build: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate environment files; every problem is reported with file:line:col
    #[command(
        after_help = "Examples:\n  learntrac config validate\n  learntrac config validate dev prod -o json"
    )]
    Validate {
        /// Environments to check (default: every environments/*.yaml)
        envs: Vec<String>,
    },
    /// Show an environment's resolved settings; secrets appear as SSM parameter names only
    #[command(
        after_help = "Examples:\n  learntrac config show dev\n  learntrac config show prod -o json"
    )]
    Show {
        /// Environment name (environments/NAME.yaml)
        env: String,
    },
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Environment name (environments/NAME.yaml)
    pub env: String,

    /// Output folder [default: .learntrac/ENV]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Folder whose files replace the built-in templates of the same relative path
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
}
