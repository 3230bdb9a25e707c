//! Our own secret scan of a rendered tree, run before anything is written. Validation
//! keeps secrets out of the environment file; this catches what a template (or a
//! `--templates` override) could still leak: checkov does not flag a plaintext password in
//! an ECS `environment`, and nothing else looks at tfvars-style variables or image layers.

use super::Files;
use crate::config::{has_url_credentials, looks_secret};
pub use crate::diagnostic::Finding;

/// Every place in `files` where a secret could end up in plain text.
pub fn audit(files: &Files) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (name, text) in files {
        let mut push = |line: usize, problem: String| {
            findings.push(Finding {
                file: name.clone(),
                line,
                problem,
            })
        };
        if name.ends_with(".tf") {
            audit_terraform(text, &mut push);
        } else if name.ends_with("Dockerfile") {
            audit_dockerfile(text, &mut push);
        }
    }
    findings
}

/// Names that say the value refers to a secret rather than holding it.
const REFERENCE_SUFFIXES: &[&str] = &["_arn", "_version", "_parameter", "_parameters", "_name"];

fn quoted_name(line: &str, keyword: &str) -> Option<String> {
    let rest = line.trim_start().strip_prefix(keyword)?.trim_start();
    let rest = rest.strip_prefix('"')?;
    Some(rest.split('"').next()?.to_string())
}

fn audit_terraform(text: &str, push: &mut impl FnMut(usize, String)) {
    // Depth of braces inside the current `environment = {` block, if in one.
    let mut in_env: Option<i32> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let code = line.split('#').next().unwrap_or_default();
        let trimmed = code.trim();
        // The one accepted exception: ElastiCache's AUTH token has no write-only argument
        // (provider 5.100), so it can only reach the replication group through the state.
        if trimmed.starts_with("data \"aws_ssm_parameter\"")
            && trimmed != "data \"aws_ssm_parameter\" \"redis_auth_token\" {"
        {
            push(n, "data \"aws_ssm_parameter\" stores the decrypted value in Terraform state; use an ephemeral resource".into());
        }
        for keyword in ["variable", "output"] {
            if let Some(v) = quoted_name(trimmed, keyword)
                && looks_secret(&v)
                && !REFERENCE_SUFFIXES.iter().any(|s| v.ends_with(s))
            {
                push(
                    n,
                    format!("{keyword} `{v}` would carry a secret through Terraform in plain text"),
                );
            }
        }
        match in_env.as_mut() {
            None => {
                if trimmed.starts_with("environment")
                    && trimmed.ends_with('{')
                    && trimmed.contains('=')
                {
                    in_env = Some(1);
                }
            }
            Some(depth) => {
                *depth += code.matches('{').count() as i32 - code.matches('}').count() as i32;
                if *depth <= 0 {
                    in_env = None;
                    continue;
                }
                if let Some((key, value)) = trimmed.split_once('=') {
                    let key = key.trim().trim_matches('"');
                    if looks_secret(key) {
                        push(
                            n,
                            format!(
                                "task environment variable `{key}` looks like a secret; use `secrets` with valueFrom"
                            ),
                        );
                    }
                    if has_url_credentials(value.trim().trim_matches('"')) {
                        push(
                            n,
                            format!(
                                "task environment variable `{key}` holds a URL with a password"
                            ),
                        );
                    }
                }
            }
        }
    }
}

fn audit_dockerfile(text: &str, push: &mut impl FnMut(usize, String)) {
    for (i, line) in text.lines().enumerate() {
        let mut words = line.split_whitespace();
        let Some(instr) = words.next() else { continue };
        if !(instr.eq_ignore_ascii_case("ENV") || instr.eq_ignore_ascii_case("ARG")) {
            continue;
        }
        for word in words {
            let key = word.split('=').next().unwrap_or_default();
            if looks_secret(key) {
                push(
                    i + 1,
                    format!("{instr} `{key}` would bake a secret into the image"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(name: &str, text: &str) -> Vec<String> {
        let files = Files::from([(name.to_string(), text.to_string())]);
        audit(&files).into_iter().map(|f| f.to_string()).collect()
    }

    #[test]
    fn flags_secrets_in_task_environment() {
        let tf = "module \"x\" {\n  environment = {\n    DB_PASSWORD = \"hunter2\"\n    URL = \"postgres://a:b@h/d\"\n    OK = \"fine\"\n  }\n  secrets = {\n    DATABASE_PASSWORD = \"/p\"\n  }\n}\n";
        assert_eq!(
            one("main.tf", tf),
            vec![
                "main.tf:3: task environment variable `DB_PASSWORD` looks like a secret; use `secrets` with valueFrom",
                "main.tf:4: task environment variable `URL` holds a URL with a password",
            ]
        );
    }

    #[test]
    fn flags_state_and_variable_leaks() {
        let tf = "data \"aws_ssm_parameter\" \"pw\" {\n  name = \"/x\"\n}\nvariable \"db_password\" {}\nvariable \"password_parameter_arn\" {}\noutput \"api_token\" {}\n";
        let found = one("rds.tf", tf);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].starts_with("rds.tf:1: data \"aws_ssm_parameter\""));
        assert!(found[1].starts_with("rds.tf:4: variable `db_password`"));
        assert!(found[2].starts_with("rds.tf:6: output `api_token`"));
    }

    #[test]
    fn flags_secrets_baked_into_images() {
        let found = one(
            "x.Dockerfile",
            "FROM scratch\nENV PORT=1 API_TOKEN=abc\nARG GITHUB_TOKEN\n",
        );
        assert_eq!(found.len(), 2, "{found:?}");
    }
}
