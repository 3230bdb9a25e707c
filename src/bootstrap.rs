//! `learntrac bootstrap ENV`: what a first deploy needs that Terraform cannot create for
//! itself — the state bucket (versioned, encrypted, private, TLS only, old versions
//! expiring; Terraform's S3 lock file instead of a DynamoDB table) and every secret the task
//! definitions read (generated where a machine may choose, from the user where a person
//! must) — checked item by item and, with `apply`, made so. Idempotent: a second run
//! changes nothing. The ECR repositories are Terraform's: the first deploy creates them
//! before it pushes (creating them here would make that apply fail on existing ones).

use serde::Serialize;

use crate::aws::s3::{self, Existence};
use crate::config::{Environment, ServiceName};
use crate::error::{Error, Result};

/// Trac's digest realm (start-trac.sh passes it to tracd).
pub const TRAC_REALM: &str = "LearnTrac";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Was there, as it should be.
    Present,
    Created,
    /// Was there; a setting was changed.
    Updated,
    /// Not there (check only, or it needs a person).
    Missing,
    /// There, but not as it should be, and not ours to change.
    Wrong,
}

#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub item: String,
    pub state: State,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub environment: String,
    pub applied: bool,
    pub items: Vec<Item>,
    pub notes: Vec<String>,
}

impl Report {
    pub fn changed(&self) -> usize {
        self.items
            .iter()
            .filter(|i| matches!(i.state, State::Created | State::Updated))
            .count()
    }

    pub fn unresolved(&self) -> usize {
        self.items
            .iter()
            .filter(|i| matches!(i.state, State::Missing | State::Wrong))
            .count()
    }
}

pub struct Options {
    /// Create and change; otherwise only check.
    pub apply: bool,
    /// Trac's first administrator: user and password, for the htdigest line.
    pub trac_admin: Option<(String, String)>,
}

/// What a parameter holds decides who may choose its value.
enum SecretKind {
    DatabasePassword,
    TokenSecret,
    RedisAuthToken,
    TracHtdigest,
    Other,
}

fn kind_of(variable: &str) -> SecretKind {
    match variable.trim_end_matches(" (db-roles)") {
        "DATABASE_PASSWORD" | "TRAC_DB_PASSWORD" | "SERVICE_DB_PASSWORD" => {
            SecretKind::DatabasePassword
        }
        "LEARNTRAC_TOKEN_SECRET" => SecretKind::TokenSecret,
        "REDIS_AUTH_TOKEN" => SecretKind::RedisAuthToken,
        "TRAC_HTDIGEST" => SecretKind::TracHtdigest,
        _ => SecretKind::Other,
    }
}

pub async fn run(env: &Environment, opts: &Options) -> Result<Report> {
    let mut report = Report {
        environment: env.environment.clone(),
        applied: opts.apply,
        items: Vec::new(),
        notes: Vec::new(),
    };
    let again = format!("learntrac bootstrap {} --yes", env.environment);
    // Whose account this is, before anything is made in it: the same check deploy,
    // rollback and destroy make (aws.account_id), so a bucket and secrets are never
    // created with another account's credentials.
    let identity = crate::aws::sts::identity(&crate::aws::sdk_config(env).await).await?;
    crate::deploy::preflight::account(env, &identity)?;
    report.notes.push(format!(
        "account {} as {}{}",
        identity.account,
        identity.arn,
        if env.aws.account_id.is_some() {
            " (aws.account_id matches)"
        } else {
            " (set aws.account_id in the environment file to pin it)"
        }
    ));
    if let Some(s3cfg) = &env.terraform.s3 {
        let region = s3cfg.region.as_deref().unwrap_or(&env.aws.region);
        let client = s3::client(env, region).await;
        state_bucket(
            &client,
            &s3cfg.bucket,
            &identity.account,
            region,
            opts.apply,
            &again,
            &mut report,
        )
        .await?;
        if let Some(table) = &s3cfg.lock_table {
            report.notes.push(format!(
                "terraform.s3.lock_table `{table}`: DynamoDB state locking is deprecated since \
                 Terraform 1.10 and still used here; remove lock_table to lock with S3's own \
                 lock file (nothing else to create)"
            ));
        }
    } else {
        report.notes.push(
            "terraform.backend is local: the state stays in the rendered folder on this machine"
                .into(),
        );
    }
    secrets(env, opts, &again, &mut report).await?;
    ecs_service_linked_role(env, opts.apply, &again, &mut report).await?;
    report.notes.push(
        "ECR repositories: Terraform's; the first `learntrac deploy` creates them before it \
         pushes"
            .into(),
    );
    Ok(report)
}

/// ECS's service-linked role: a new account has none until the console (or this) makes it,
/// and Terraform's first `CreateService` fails without it. Made here, not in Terraform: an
/// account that has it would fail Terraform's create, and it belongs to the account, not to
/// one environment.
async fn ecs_service_linked_role(
    env: &Environment,
    apply: bool,
    again: &str,
    report: &mut Report,
) -> Result<()> {
    use crate::aws::iam;
    let config = crate::aws::sdk_config(env).await;
    let what = format!("ECS service-linked role {}", iam::ECS_SERVICE_LINKED_ROLE);
    let item = |state: State, detail: &str, fix: Option<String>| Item {
        item: what.clone(),
        state,
        detail: detail.to_string(),
        fix,
    };
    if iam::ecs_service_linked_role_exists(&config).await? {
        report
            .items
            .push(item(State::Present, "the account has it", None));
    } else if apply {
        iam::create_ecs_service_linked_role(&config).await?;
        report.items.push(item(
            State::Created,
            "made for ECS (the account keeps it)",
            None,
        ));
    } else {
        report.items.push(item(
            State::Missing,
            "a new account has none: creating the services would fail",
            Some(again.to_string()),
        ));
    }
    Ok(())
}

async fn state_bucket(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    account: &str,
    region: &str,
    apply: bool,
    again: &str,
    report: &mut Report,
) -> Result<()> {
    let item = |what: &str, state: State, detail: String, fix: Option<String>| Item {
        item: format!("s3://{bucket} {what}"),
        state,
        detail,
        fix,
    };
    let missing = |what: &str, detail: &str| {
        item(
            what,
            State::Missing,
            detail.to_string(),
            Some(again.to_string()),
        )
    };
    match s3::existence(c, bucket, account).await? {
        Existence::Forbidden => {
            report.items.push(item(
                "(state bucket)",
                State::Wrong,
                "exists but is not this account's (or these credentials may not read it)".into(),
                Some(
                    "bucket names are global: choose another terraform.s3.bucket, or use the \
                     credentials of the account that owns it"
                        .into(),
                ),
            ));
            return Ok(());
        }
        Existence::Missing if !apply => {
            report.items.push(missing(
                "(state bucket)",
                &format!("does not exist in {region}"),
            ));
            return Ok(());
        }
        Existence::Missing => {
            s3::create(c, bucket, region).await?;
            report.items.push(item(
                "(state bucket)",
                State::Created,
                format!("in {region}"),
                None,
            ));
        }
        Existence::Ours => report.items.push(item(
            "(state bucket)",
            State::Present,
            format!("in {region}"),
            None,
        )),
    }
    // Each setting: checked, then made so (a fresh bucket has none of them).
    let fresh = report
        .items
        .last()
        .is_some_and(|i| i.state == State::Created);
    let done = |fresh: bool| {
        if fresh {
            State::Created
        } else {
            State::Updated
        }
    };

    if s3::versioned(c, bucket).await? {
        report
            .items
            .push(item("versioning", State::Present, "enabled".into(), None));
    } else if apply {
        s3::enable_versioning(c, bucket).await?;
        report
            .items
            .push(item("versioning", done(fresh), "enabled".into(), None));
    } else {
        report.items.push(missing("versioning", "not enabled"));
    }

    if s3::encrypted(c, bucket).await? {
        report.items.push(item(
            "default encryption",
            State::Present,
            "on".into(),
            None,
        ));
    } else if apply {
        s3::enable_encryption(c, bucket).await?;
        report.items.push(item(
            "default encryption",
            done(fresh),
            "SSE-S3 (AES-256)".into(),
            None,
        ));
    } else {
        report.items.push(missing("default encryption", "off"));
    }

    if s3::public_access_blocked(c, bucket).await? {
        report.items.push(item(
            "public access block",
            State::Present,
            "all four on".into(),
            None,
        ));
    } else if apply {
        s3::block_public_access(c, bucket).await?;
        report.items.push(item(
            "public access block",
            done(fresh),
            "all four on".into(),
            None,
        ));
    } else {
        report
            .items
            .push(missing("public access block", "not fully on"));
    }

    match s3::policy(c, bucket).await? {
        Some(p) if s3::denies_insecure_transport(&p, bucket) => report.items.push(item(
            "TLS-only policy",
            State::Present,
            "non-TLS requests denied".into(),
            None,
        )),
        // Someone else's policy: merging statements into it is theirs to decide.
        Some(_) => report.items.push(item(
            "TLS-only policy",
            State::Wrong,
            "the bucket has a policy without a statement denying non-TLS requests to \
             everyone (Effect Deny, Principal *, Action s3:*, the bucket and its objects, \
             aws:SecureTransport false)"
                .into(),
            Some(format!(
                "add to it a Deny of s3:* when aws:SecureTransport is false (Sid {}), as in \
                 docs/operations.md",
                s3::TLS_ONLY_SID
            )),
        )),
        None if apply => {
            s3::put_policy(c, bucket, &s3::tls_only_policy(bucket)).await?;
            report.items.push(item(
                "TLS-only policy",
                done(fresh),
                "non-TLS requests denied".into(),
                None,
            ));
        }
        None => report
            .items
            .push(missing("TLS-only policy", "no bucket policy")),
    }

    let rules = s3::lifecycle_rules(c, bucket).await?;
    let has_rule = rules.iter().any(s3::expires_every_old_version);
    let detail = format!(
        "replaced state versions expire after {} days",
        s3::NONCURRENT_DAYS
    );
    if has_rule {
        report.items.push(item(
            "old versions expiry",
            State::Present,
            "a rule expires replaced versions".into(),
            None,
        ));
    } else if apply {
        s3::add_noncurrent_expiry(c, bucket, rules).await?;
        report
            .items
            .push(item("old versions expiry", done(fresh), detail, None));
    } else {
        report.items.push(missing("old versions expiry", "no rule"));
    }
    Ok(())
}

/// Every SSM parameter a task definition reads: present, generated, or asked for.
async fn secrets(
    env: &Environment,
    opts: &Options,
    again: &str,
    report: &mut Report,
) -> Result<()> {
    let config = crate::aws::sdk_config(env).await;
    let ssm = aws_sdk_ssm::Client::new(&config);
    let mut wanted: Vec<(String, String)> = Vec::new();
    for svc in ServiceName::ALL {
        for (var, param) in crate::render::task_secrets(env, svc) {
            if !wanted.iter().any(|(_, p)| *p == param) {
                wanted.push((var, param));
            }
        }
    }
    for (var, param) in wanted {
        let item = |state: State, detail: &str, fix: Option<String>| Item {
            item: format!("SSM {param}"),
            state,
            detail: detail.to_string(),
            fix,
        };
        if crate::aws::ssm::get(&ssm, &param).await?.is_some() {
            report
                .items
                .push(item(State::Present, &format!("read as {var}"), None));
            continue;
        }
        let value = match kind_of(&var) {
            SecretKind::DatabasePassword => {
                Some((password(32)?, "generated (32 characters RDS accepts)"))
            }
            SecretKind::TokenSecret => Some((hex(48)?, "generated (48 random bytes)")),
            // ElastiCache takes 16 to 128 printable characters without / " or @.
            SecretKind::RedisAuthToken => Some((
                password(64)?,
                "generated (64 characters ElastiCache accepts)",
            )),
            SecretKind::TracHtdigest => opts.trac_admin.as_ref().map(|(user, pw)| {
                (
                    htdigest(user, pw),
                    "Trac's first administrator's login line",
                )
            }),
            SecretKind::Other => None,
        };
        match value {
            Some((v, how)) if opts.apply => {
                crate::aws::ssm::put(&ssm, &param, &v).await?;
                report.items.push(item(State::Created, how, None));
            }
            Some(_) => report.items.push(item(
                State::Missing,
                &format!("read as {var}"),
                Some(again.to_string()),
            )),
            None => {
                let short = param
                    .strip_prefix(&format!("{}/", env.ssm_prefix()))
                    .unwrap_or(&param);
                let fix = match kind_of(&var) {
                    SecretKind::TracHtdigest => format!(
                        "{again} --trac-admin USER (the password is asked for, or read with \
                         --password-stdin)"
                    ),
                    _ => format!("learntrac secrets set {} {short}", env.environment),
                };
                report.items.push(item(
                    State::Missing,
                    &format!("read as {var}; a person must choose it"),
                    Some(fix),
                ));
            }
        }
    }
    Ok(())
}

/// An htdigest line: `user:realm:MD5(user:realm:password)`.
pub fn htdigest(user: &str, password: &str) -> String {
    use md5::{Digest, Md5};
    let hash = Md5::digest(format!("{user}:{TRAC_REALM}:{password}").as_bytes());
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("{user}:{TRAC_REALM}:{hex}")
}

fn random(n: usize) -> Result<Vec<u8>> {
    let mut bytes = vec![0u8; n];
    let mut f =
        std::fs::File::open("/dev/urandom").map_err(|e| Error::io("read /dev/urandom", e))?;
    std::io::Read::read_exact(&mut f, &mut bytes).map_err(|e| Error::io("read /dev/urandom", e))?;
    Ok(bytes)
}

fn hex(n: usize) -> Result<String> {
    Ok(random(n)?.iter().map(|b| format!("{b:02x}")).collect())
}

/// Letters and digits only: inside what RDS accepts, and safe in any URL or shell.
pub fn password(len: usize) -> Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for b in random(len * 2)? {
            // Rejection sampling keeps every character equally likely (248 = 4 × 62).
            if (b as usize) < 248 && out.len() < len {
                out.push(ALPHABET[b as usize % ALPHABET.len()] as char);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htdigest_is_user_realm_md5() {
        // md5("admin:LearnTrac:secret"), as Apache's htdigest computes it.
        assert_eq!(
            htdigest("admin", "secret"),
            "admin:LearnTrac:a0391b7b5ff0ea1247020425c9b1d0ea"
        );
    }

    #[test]
    fn generated_passwords_pass_rds_rules() {
        let p = password(32).expect("password");
        assert_eq!(p.len(), 32);
        assert_eq!(crate::secrets::rds_password_problem(&p), None);
        assert_ne!(p, password(32).expect("another"));
    }
}
