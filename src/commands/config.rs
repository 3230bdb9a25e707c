//! `learntrac config validate|show`.

use std::fmt::Write as _;

use serde::Serialize;

use crate::Ctx;
use crate::config::routing::{self, RoutingWarning};
use crate::config::{self, Diagnostic, Environment};
use crate::error::{Error, Result, exit};
use crate::render::{db_roles_container, secrets_of, wired_environment};

#[derive(Serialize)]
struct Checked {
    environment: String,
    valid: bool,
    diagnostics: Vec<Diagnostic>,
    /// Valid, but probably not what was meant (routing rules that never match or that
    /// take another service's paths).
    warnings: Vec<RoutingWarning>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub fn validate(envs: &[String], ctx: &Ctx) -> Result<i32> {
    let root = ctx.root()?;
    let names = if envs.is_empty() {
        config::available(&root)
    } else {
        envs.to_vec()
    };
    if names.is_empty() {
        return Err(Error::NoProject { searched: root });
    }
    let results: Vec<Checked> = names
        .iter()
        .map(|name| match config::load(&root, name) {
            Ok(env) => Checked {
                environment: name.clone(),
                valid: true,
                diagnostics: vec![],
                warnings: routing::warnings(&env.routing),
                error: None,
            },
            Err(Error::Config(d)) => Checked {
                environment: name.clone(),
                valid: false,
                diagnostics: d.0,
                warnings: vec![],
                error: None,
            },
            Err(e) => Checked {
                environment: name.clone(),
                valid: false,
                diagnostics: vec![],
                warnings: vec![],
                error: Some(e.to_string()),
            },
        })
        .collect();
    let failed = results.iter().filter(|r| !r.valid).count();
    ctx.out.result(&results, || {
        let mut s = String::new();
        for r in results.iter().filter(|r| r.valid) {
            let _ = writeln!(s, "ok     {}", r.environment);
        }
        s
    });
    // Problems go to stderr in every format, so a human sees them in CI logs too.
    for r in &results {
        for w in &r.warnings {
            eprintln!("warning  {}: {w}", r.environment);
        }
    }
    for r in results.iter().filter(|r| !r.valid) {
        eprintln!("error  {}", r.environment);
        for d in &r.diagnostics {
            eprintln!("{d}");
        }
        if let Some(e) = &r.error {
            eprintln!("{e}");
        }
    }
    if failed > 0 {
        eprintln!("{failed} of {} environment(s) invalid", results.len());
        Ok(exit::USAGE)
    } else {
        Ok(exit::OK)
    }
}

/// The resolved view: the file's values with defaults filled in, plus what learntrac
/// derives. Secrets are SSM parameter names; values are never read here.
#[derive(Serialize)]
struct Resolved<'a> {
    #[serde(flatten)]
    env: &'a Environment,
    derived: Derived,
}

#[derive(Serialize)]
struct Derived {
    name_prefix: String,
    ssm_prefix: String,
    production: bool,
    serves: &'static str,
    /// What the voice tutor runs on in this environment's service tasks.
    voice: &'static str,
    /// Per service: variables learntrac sets from deployed resources, and every secret.
    wiring: std::collections::BTreeMap<String, Wiring>,
    /// The container each task runs before its app: makes the services' database roles.
    db_roles: Wiring,
}

#[derive(Serialize)]
struct Wiring {
    environment: std::collections::BTreeMap<String, String>,
    secrets: std::collections::BTreeMap<String, String>,
}

pub fn show(name: &str, ctx: &Ctx) -> Result<i32> {
    let root = ctx.root()?;
    let env = config::load(&root, name)?;
    let wiring = env
        .services
        .iter()
        .map(|(name, _)| {
            let environment = wired_environment(&env, name)
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let secrets = secrets_of(&env, name).into_iter().collect();
            (
                name.to_string(),
                Wiring {
                    environment,
                    secrets,
                },
            )
        })
        .collect();
    let resolved = Resolved {
        env: &env,
        derived: Derived {
            name_prefix: env.name_prefix(),
            ssm_prefix: env.ssm_prefix(),
            production: env.is_production(),
            serves: if env.tls.certificate_arn.is_some() {
                "https"
            } else {
                "http"
            },
            voice: match env
                .services
                .get(crate::config::ServiceName::Learntrac)
                .environment
                .get("VOICE_ENGINE")
                .map(String::as_str)
            {
                Some("local" | "auto") => {
                    "local engines (espeak-ng, PocketSphinx) in the service image"
                }
                Some("openai") => {
                    "openai: free-form speech through VOICE_BASE_URL (else CHAT_BASE_URL), keyed by the VOICE_API_KEY (else CHAT_API_KEY) secret"
                }
                Some("aws") => {
                    "aws: free-form speech through Amazon Transcribe Streaming and Polly in aws.region, with the task role's transcribe:StartStreamTranscription and polly:SynthesizeSpeech (no secret)"
                }
                _ => "off: the service's VOICE_ENGINE is not local, auto, openai or aws",
            },
            wiring,
            db_roles: {
                let (vars, secrets) = db_roles_container(&env);
                Wiring {
                    environment: vars
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    secrets: secrets.into_iter().collect(),
                }
            },
        },
    };
    ctx.out.result(&resolved, || {
        serde_yaml::to_string(&resolved).unwrap_or_else(|e| format!("cannot show: {e}"))
    });
    Ok(exit::OK)
}
