//! The Terraform state bucket: whether it exists and is set up as state deserves
//! (versioned, encrypted, private, TLS only, old versions expiring), and making it so.

use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketLocationConstraint, BucketVersioningStatus,
    CreateBucketConfiguration, ExpirationStatus, LifecycleRule, LifecycleRuleFilter,
    NoncurrentVersionExpiration, PublicAccessBlockConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    VersioningConfiguration,
};

use crate::config::Environment;
use crate::error::{Error, Result};

/// The statement id learntrac's bucket policy statement carries.
pub const TLS_ONLY_SID: &str = "DenyInsecureTransport";
/// The lifecycle rule learntrac adds.
pub const NONCURRENT_RULE_ID: &str = "learntrac-expire-old-state-versions";
/// Days a replaced state version is kept (enough to go back a few deploys).
pub const NONCURRENT_DAYS: i32 = 90;

pub async fn client(env: &Environment, region: &str) -> Client {
    let sdk = crate::aws::sdk_config(env).await;
    let mut b = aws_sdk_s3::config::Builder::from(&sdk)
        .region(aws_sdk_s3::config::Region::new(region.to_string()));
    // An endpoint (moto in tests) serves buckets by path, not by host name.
    if env.aws.endpoint.is_some() {
        b = b.force_path_style(true);
    }
    Client::from_conf(b.build())
}

fn code<E: ProvideErrorMetadata>(e: &E) -> &str {
    e.code().unwrap_or("")
}

fn fail<E: std::error::Error + 'static>(what: &str, bucket: &str, e: E) -> Error {
    crate::aws::error(what, &format!("s3://{bucket}"), e)
}

#[derive(Debug, PartialEq, Eq)]
pub enum Existence {
    Ours,
    Missing,
    /// Another account's (or no access).
    Forbidden,
}

/// Whether the bucket exists and is `account`'s: S3 answers 403 for a bucket another
/// account owns (ExpectedBucketOwner), even where these credentials could read it.
pub async fn existence(c: &Client, bucket: &str, account: &str) -> Result<Existence> {
    let mut head = c.head_bucket().bucket(bucket);
    if !account.is_empty() {
        head = head.expected_bucket_owner(account);
    }
    match head.send().await {
        Ok(_) => Ok(Existence::Ours),
        Err(e) => match e.raw_response().map(|r| r.status().as_u16()) {
            Some(404) => Ok(Existence::Missing),
            Some(403) => Ok(Existence::Forbidden),
            _ => Err(fail("look up the bucket", bucket, e)),
        },
    }
}

pub async fn create(c: &Client, bucket: &str, region: &str) -> Result<()> {
    let mut req = c.create_bucket().bucket(bucket);
    // us-east-1 is the one region that takes no location constraint.
    if region != "us-east-1" {
        req = req.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region))
                .build(),
        );
    }
    req.send()
        .await
        .map(|_| ())
        .map_err(|e| fail("create the bucket", bucket, e))
}

pub async fn versioned(c: &Client, bucket: &str) -> Result<bool> {
    match c.get_bucket_versioning().bucket(bucket).send().await {
        Ok(v) => Ok(v.status() == Some(&BucketVersioningStatus::Enabled)),
        // moto answers a never-versioned bucket with an empty <GetBucketVersioningResponse/>
        // where S3 sends <VersioningConfiguration/>; the SDK cannot parse it. A 200 whose
        // body does not say Enabled is "not enabled" either way.
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 200) => Ok(e
            .raw_response()
            .and_then(|r| r.body().bytes())
            .is_some_and(|b| String::from_utf8_lossy(b).contains("<Status>Enabled</Status>"))),
        Err(e) => Err(fail("read the bucket's versioning", bucket, e)),
    }
}

pub async fn enable_versioning(c: &Client, bucket: &str) -> Result<()> {
    c.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .map(|_| ())
        .map_err(|e| fail("turn on versioning", bucket, e))
}

pub async fn encrypted(c: &Client, bucket: &str) -> Result<bool> {
    match c.get_bucket_encryption().bucket(bucket).send().await {
        Ok(out) => Ok(out
            .server_side_encryption_configuration()
            .is_some_and(|conf| !conf.rules().is_empty())),
        Err(e) if code(&e) == "ServerSideEncryptionConfigurationNotFoundError" => Ok(false),
        Err(e) => Err(fail("read the bucket's encryption", bucket, e)),
    }
}

pub async fn enable_encryption(c: &Client, bucket: &str) -> Result<()> {
    let by_default = ServerSideEncryptionByDefault::builder()
        .sse_algorithm(ServerSideEncryption::Aes256)
        .build()
        .map_err(|e| fail("describe default encryption", bucket, e))?;
    let conf = ServerSideEncryptionConfiguration::builder()
        .rules(
            ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(by_default)
                .build(),
        )
        .build()
        .map_err(|e| fail("describe default encryption", bucket, e))?;
    c.put_bucket_encryption()
        .bucket(bucket)
        .server_side_encryption_configuration(conf)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| fail("turn on default encryption", bucket, e))
}

pub async fn public_access_blocked(c: &Client, bucket: &str) -> Result<bool> {
    match c.get_public_access_block().bucket(bucket).send().await {
        Ok(out) => Ok(out.public_access_block_configuration().is_some_and(|b| {
            b.block_public_acls() == Some(true)
                && b.ignore_public_acls() == Some(true)
                && b.block_public_policy() == Some(true)
                && b.restrict_public_buckets() == Some(true)
        })),
        Err(e) if code(&e) == "NoSuchPublicAccessBlockConfiguration" => Ok(false),
        Err(e) => Err(fail("read the bucket's public access block", bucket, e)),
    }
}

pub async fn block_public_access(c: &Client, bucket: &str) -> Result<()> {
    c.put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .map(|_| ())
        .map_err(|e| fail("block public access", bucket, e))
}

/// The bucket's policy, if it has one.
pub async fn policy(c: &Client, bucket: &str) -> Result<Option<String>> {
    match c.get_bucket_policy().bucket(bucket).send().await {
        Ok(out) => Ok(out.policy().map(str::to_string)),
        Err(e) if code(&e) == "NoSuchBucketPolicy" => Ok(None),
        Err(e) => Err(fail("read the bucket policy", bucket, e)),
    }
}

/// A policy refusing every request that does not use TLS.
pub fn tls_only_policy(bucket: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": TLS_ONLY_SID,
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}
        }]
    })
    .to_string()
}

/// Whether a bucket policy refuses every non-TLS request to the bucket and its objects:
/// a statement with Effect Deny, Principal `*`, Action `s3:*`, both resources, and the
/// condition aws:SecureTransport = false — read, not trusted by its Sid (a statement named
/// DenyInsecureTransport can allow anything).
pub fn denies_insecure_transport(policy: &str, bucket: &str) -> bool {
    use serde_json::Value;
    let Ok(doc) = serde_json::from_str::<Value>(policy) else {
        return false;
    };
    let list = |v: &Value| -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    };
    let statements = match &doc["Statement"] {
        Value::Array(a) => a.clone(),
        v @ Value::Object(_) => vec![v.clone()],
        _ => Vec::new(),
    };
    statements.iter().any(|st| {
        let everyone = st["Principal"] == "*" || list(&st["Principal"]["AWS"]) == ["*"];
        let actions = list(&st["Action"]);
        let resources = list(&st["Resource"]);
        let insecure = &st["Condition"]["Bool"]["aws:SecureTransport"];
        // Exactly that condition: another key or operator would narrow the Deny.
        let only_that = st["Condition"].as_object().is_some_and(|c| c.len() == 1)
            && st["Condition"]["Bool"]
                .as_object()
                .is_some_and(|b| b.len() == 1);
        st["Effect"] == "Deny"
            && st.get("NotPrincipal").is_none()
            && st.get("NotAction").is_none()
            && everyone
            && actions.iter().any(|a| a == "s3:*" || a == "*")
            && resources.contains(&format!("arn:aws:s3:::{bucket}"))
            && resources.contains(&format!("arn:aws:s3:::{bucket}/*"))
            && only_that
            && (insecure == "false" || list(insecure) == ["false"] || insecure == false)
    })
}

/// Whether a lifecycle rule expires replaced versions of every object: enabled, with a
/// noncurrent-version expiry, and not narrowed to a prefix or tags (the state's key could
/// lie outside them).
pub fn expires_every_old_version(rule: &LifecycleRule) -> bool {
    #[allow(deprecated)] // the rule's own `prefix`: the older form S3 may still return
    let no_legacy_prefix = rule.prefix().unwrap_or("").is_empty();
    let whole_bucket = match rule.filter() {
        None => no_legacy_prefix,
        Some(f) => {
            f.prefix().unwrap_or("").is_empty()
                && f.tag().is_none()
                && f.and().is_none()
                && f.object_size_greater_than().is_none()
                && f.object_size_less_than().is_none()
        }
    };
    rule.status() == &ExpirationStatus::Enabled
        && whole_bucket
        && rule
            .noncurrent_version_expiration()
            .and_then(|n| n.noncurrent_days())
            .is_some()
}

pub async fn put_policy(c: &Client, bucket: &str, policy: &str) -> Result<()> {
    c.put_bucket_policy()
        .bucket(bucket)
        .policy(policy)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| fail("set the bucket policy", bucket, e))
}

/// Ids of the bucket's lifecycle rules.
pub async fn lifecycle_rules(c: &Client, bucket: &str) -> Result<Vec<LifecycleRule>> {
    match c
        .get_bucket_lifecycle_configuration()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(out) => Ok(out.rules().to_vec()),
        Err(e) if code(&e) == "NoSuchLifecycleConfiguration" => Ok(Vec::new()),
        Err(e) => Err(fail("read the bucket's lifecycle rules", bucket, e)),
    }
}

/// Adds the rule expiring replaced state versions, keeping the bucket's other rules.
pub async fn add_noncurrent_expiry(
    c: &Client,
    bucket: &str,
    mut rules: Vec<LifecycleRule>,
) -> Result<()> {
    // Ours, if disabled or narrowed, is replaced (S3 refuses two rules with one id).
    rules.retain(|r| r.id() != Some(NONCURRENT_RULE_ID));
    let rule = LifecycleRule::builder()
        .id(NONCURRENT_RULE_ID)
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix("").build())
        .noncurrent_version_expiration(
            NoncurrentVersionExpiration::builder()
                .noncurrent_days(NONCURRENT_DAYS)
                .build(),
        )
        .build()
        .map_err(|e| fail("describe the lifecycle rule", bucket, e))?;
    rules.push(rule);
    let conf = BucketLifecycleConfiguration::builder()
        .set_rules(Some(rules))
        .build()
        .map_err(|e| fail("describe the lifecycle rules", bucket, e))?;
    c.put_bucket_lifecycle_configuration()
        .bucket(bucket)
        .lifecycle_configuration(conf)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| fail("set the lifecycle rules", bucket, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tls_policy_is_read_not_trusted_by_its_sid() {
        let bucket = "school-state";
        assert!(denies_insecure_transport(&tls_only_policy(bucket), bucket));
        // The review's case: the Sid, with Effect Allow to another account.
        let allow = tls_only_policy(bucket)
            .replace("\"Deny\"", "\"Allow\"")
            .replace(
                "\"Principal\":\"*\"",
                "\"Principal\":{\"AWS\":\"arn:aws:iam::999999999999:root\"}",
            );
        assert!(allow.contains("Allow"));
        assert!(!denies_insecure_transport(&allow, bucket));
        // Denied only for objects, or for another bucket, or when TLS *is* used.
        let objects_only =
            tls_only_policy(bucket).replace(&format!("\"arn:aws:s3:::{bucket}\","), "");
        assert!(!denies_insecure_transport(&objects_only, bucket));
        assert!(!denies_insecure_transport(
            &tls_only_policy("other"),
            bucket
        ));
        let inverted = tls_only_policy(bucket).replace("\"false\"", "\"true\"");
        assert!(!denies_insecure_transport(&inverted, bucket));
        assert!(!denies_insecure_transport("not json", bucket));
        // A narrowing condition beside it: denied only for one account's principals.
        let narrowed = tls_only_policy(bucket).replace(
            "\"Condition\":{",
            "\"Condition\":{\"StringEquals\":{\"aws:PrincipalAccount\":\"111111111111\"},",
        );
        assert!(narrowed.contains("PrincipalAccount"), "{narrowed}");
        assert!(!denies_insecure_transport(&narrowed, bucket));
        // The same statement with a Sid of its own, among others, passes.
        let renamed = format!(
            "{{\"Version\":\"2012-10-17\",\"Statement\":[{{\"Sid\":\"Other\",\"Effect\":\"Allow\",\"Principal\":{{\"AWS\":\"arn:aws:iam::1:root\"}},\"Action\":\"s3:GetObject\",\"Resource\":\"arn:aws:s3:::{bucket}/*\"}},{}]}}",
            serde_json::from_str::<serde_json::Value>(&tls_only_policy(bucket))
                .map(|v| v["Statement"][0].to_string().replace(TLS_ONLY_SID, "Mine"))
                .unwrap_or_default()
        );
        assert!(denies_insecure_transport(&renamed, bucket), "{renamed}");
    }

    #[test]
    fn only_an_enabled_whole_bucket_rule_counts() {
        let rule = |status: ExpirationStatus, prefix: &str| {
            LifecycleRule::builder()
                .status(status)
                .filter(LifecycleRuleFilter::builder().prefix(prefix).build())
                .noncurrent_version_expiration(
                    NoncurrentVersionExpiration::builder()
                        .noncurrent_days(90)
                        .build(),
                )
                .build()
                .ok()
        };
        let ok = |r: Option<LifecycleRule>| r.as_ref().is_some_and(expires_every_old_version);
        assert!(ok(rule(ExpirationStatus::Enabled, "")));
        assert!(!ok(rule(ExpirationStatus::Disabled, "")));
        assert!(!ok(rule(ExpirationStatus::Enabled, "logs/")));
    }
}
