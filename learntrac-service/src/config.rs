//! Configuration from environment variables: the names the ECS task definitions set.
//! A missing or malformed value stops start-up with a message naming the variable.

use std::collections::HashMap;
use std::time::Duration;

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Clone)]
pub struct Config {
    /// `postgres://…` or `sqlite://…`; holds the password, so never printed.
    pub database_url: String,
    /// None: concept reads are cached in-process only.
    pub redis_url: Option<String>,
    pub port: u16,
    pub log_format: LogFormat,
    /// HMAC secret of bearer tokens; None turns bearer tokens off (Trac cookies still work).
    pub token_secret: Option<String>,
    pub cache_ttl: Duration,
    /// How long a checked Trac cookie is trusted without asking Trac's table again (a
    /// logout takes this long to reach the API); zero asks every time.
    pub session_ttl: Duration,
    /// Namespace of cache keys, so environments (or test runs) can share a Redis.
    pub cache_prefix: String,
    pub request_timeout: Duration,
    pub body_limit: usize,
    pub db_max_connections: u32,
    pub db_acquire_timeout: Duration,
    /// The chat tutor; None when CHAT_BASE_URL and CHAT_MODEL are not set.
    pub chat: Option<crate::tutor::ChatSettings>,
    /// VOICE_ENGINE: which speech engines the voice tutor uses.
    pub voice: VoiceEngine,
    /// The recogniser's pronunciation dictionary (VOICE_DICTIONARY).
    pub voice_dictionary: std::path::PathBuf,
    /// The OpenAI-compatible audio endpoint, with VOICE_ENGINE=openai.
    pub voice_openai: Option<crate::voice::openai::OpenAiVoiceConfig>,
    /// Amazon's speech services, with VOICE_ENGINE=aws.
    pub voice_aws: Option<crate::voice::aws::AwsVoiceConfig>,
    /// VOICE_DAILY_SECONDS: seconds of speech a student may send per UTC day.
    pub voice_daily_seconds: i64,
    /// VOICE_IDLE_SECONDS: a voice socket quiet this long is closed.
    pub voice_idle: Duration,
}

/// VOICE_ENGINE: `none` (the default), `local` (espeak-ng and PocketSphinx on this machine;
/// start-up fails without them), `auto` (local when they are here, else none), `openai`
/// (an OpenAI-compatible audio endpoint: free-form speech) or `aws` (Transcribe Streaming
/// and Polly: free-form speech, heard while it is spoken).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoiceEngine {
    None,
    Local,
    Auto,
    /// An OpenAI-compatible audio endpoint (`Config::voice_openai`).
    OpenAi,
    /// Amazon Transcribe Streaming and Polly (`Config::voice_aws`).
    Aws,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database", &redact(&self.database_url))
            .field("redis_url", &self.redis_url.as_deref().map(redact))
            .field("port", &self.port)
            .field("log_format", &self.log_format)
            .field("token_secret", &self.token_secret.as_ref().map(|_| "<set>"))
            .field("cache_ttl", &self.cache_ttl)
            .field("request_timeout", &self.request_timeout)
            .field("chat", &self.chat)
            .finish_non_exhaustive()
    }
}

/// `scheme://user:***@host/db`: a URL safe to log.
pub fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, rest)), Some(at)) if at > scheme.len() => {
            let userinfo = &rest[..at - scheme.len() - 3];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{}", &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// libpq's `sslmode` values.
const SSL_MODES: &[&str] = &[
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
];

/// The raw (still percent-encoded) value of a query parameter of a URL.
pub(crate) fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .map(str::to_string)
}

/// Percent-encodes a URL component.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&std::env::vars().collect())
    }

    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |k: &str| vars.get(k).filter(|v| !v.is_empty()).cloned();
        let database_url = match get("DATABASE_URL") {
            Some(url) => url,
            // ECS sets the parts; the password arrives as a secret.
            None => {
                let part = |var: &'static str| {
                    get(var).ok_or(ConfigError {
                        var,
                        problem: "not set (set DATABASE_URL, or DATABASE_HOST, DATABASE_NAME, DATABASE_USER and DATABASE_PASSWORD)".into(),
                    })
                };
                let host = part("DATABASE_HOST")?;
                let name = part("DATABASE_NAME")?;
                let user = part("DATABASE_USER")?;
                let password = part("DATABASE_PASSWORD")?;
                let port: u16 = parse(vars, "DATABASE_PORT", 5432)?;
                let mut url = format!(
                    "postgres://{}:{}@{host}:{port}/{name}",
                    encode(&user),
                    encode(&password)
                );
                // TLS as libpq spells it: RDS enforces TLS, and the task definition asks
                // for verify-full against the RDS CA bundle in the image.
                let tls: Vec<String> = [
                    ("sslmode", "DATABASE_SSLMODE"),
                    ("sslrootcert", "DATABASE_SSLROOTCERT"),
                ]
                .into_iter()
                .filter_map(|(param, var)| get(var).map(|v| format!("{param}={}", encode(&v))))
                .collect();
                if !tls.is_empty() {
                    url = format!("{url}?{}", tls.join("&"));
                }
                url
            }
        };
        if let Some(mode) = query_param(&database_url, "sslmode")
            && !SSL_MODES.contains(&mode.as_str())
        {
            return Err(ConfigError {
                var: "DATABASE_SSLMODE",
                problem: format!("`{mode}` is not one of {}", SSL_MODES.join(", ")),
            });
        }
        if !(database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://")
            || database_url.starts_with("sqlite:"))
        {
            return Err(ConfigError {
                var: "DATABASE_URL",
                problem: format!(
                    "`{}` is neither postgres://… nor sqlite:…",
                    redact(&database_url)
                ),
            });
        }
        let mut redis_url = get("REDIS_URL");
        // ElastiCache's AUTH token arrives as a secret of its own (the task definition's
        // REDIS_URL carries none); it becomes the URL's password, which the redis crate sends
        // with AUTH on every connection.
        if let Some(token) = get("REDIS_AUTH_TOKEN") {
            let Some(url) = &redis_url else {
                return Err(ConfigError {
                    var: "REDIS_AUTH_TOKEN",
                    problem: "set, but REDIS_URL is not: set both, or neither".into(),
                });
            };
            let Some((scheme, rest)) = url.split_once("://") else {
                return Err(ConfigError {
                    var: "REDIS_URL",
                    problem: format!("`{}` is not a redis:// or rediss:// URL", redact(url)),
                });
            };
            if rest.split('/').next().unwrap_or_default().contains('@') {
                return Err(ConfigError {
                    var: "REDIS_URL",
                    problem: "has a password of its own while REDIS_AUTH_TOKEN is set: keep one"
                        .into(),
                });
            }
            redis_url = Some(format!("{scheme}://:{}@{rest}", encode(&token)));
        }
        if let Some(r) = &redis_url
            && !(r.starts_with("redis://") || r.starts_with("rediss://"))
        {
            return Err(ConfigError {
                var: "REDIS_URL",
                problem: format!("`{}` is not a redis:// or rediss:// URL", redact(r)),
            });
        }
        // rediss:// verifies the server's certificate (ElastiCache's chain to Amazon's
        // public roots); the redis crate's `#insecure` would turn that off.
        if let Some(r) = &redis_url
            && r.contains("#insecure")
        {
            return Err(ConfigError {
                var: "REDIS_URL",
                problem: "`#insecure` turns off certificate verification: remove it".into(),
            });
        }
        let log_format = match get("LOG_FORMAT").as_deref() {
            None | Some("json") => LogFormat::Json,
            Some("pretty") => LogFormat::Pretty,
            Some(other) => {
                return Err(ConfigError {
                    var: "LOG_FORMAT",
                    problem: format!("`{other}` is not json or pretty"),
                });
            }
        };
        let token_secret = get("LEARNTRAC_TOKEN_SECRET");
        if token_secret.as_ref().is_some_and(|s| s.len() < 32) {
            return Err(ConfigError {
                var: "LEARNTRAC_TOKEN_SECRET",
                problem: "too short: use at least 32 random characters".into(),
            });
        }
        let chat = chat(vars)?;
        let voice = match get("VOICE_ENGINE").as_deref() {
            None | Some("none") => VoiceEngine::None,
            Some("local") => VoiceEngine::Local,
            Some("auto") => VoiceEngine::Auto,
            Some("openai") => VoiceEngine::OpenAi,
            Some("aws") => VoiceEngine::Aws,
            Some(other) => {
                return Err(ConfigError {
                    var: "VOICE_ENGINE",
                    problem: format!("`{other}` is not none, local, auto, openai or aws"),
                });
            }
        };
        let voice_openai = if voice == VoiceEngine::OpenAi {
            Some(openai_voice(vars)?)
        } else {
            None
        };
        let voice_aws = if voice == VoiceEngine::Aws {
            Some(aws_voice(vars)?)
        } else {
            None
        };
        Ok(Config {
            chat,
            voice,
            voice_aws,
            voice_dictionary: get("VOICE_DICTIONARY")
                .unwrap_or_else(|| crate::voice::local::DEBIAN_DICTIONARY.into())
                .into(),
            voice_openai,
            voice_daily_seconds: parse(vars, "VOICE_DAILY_SECONDS", 1800)?,
            voice_idle: Duration::from_secs(parse(
                vars,
                "VOICE_IDLE_SECONDS",
                crate::limits::SOCKET_IDLE.as_secs(),
            )?),
            database_url,
            redis_url,
            port: parse(vars, "PORT", 8001)?,
            log_format,
            token_secret,
            cache_ttl: Duration::from_secs(parse(vars, "CACHE_TTL_SECONDS", 300)?),
            session_ttl: Duration::from_millis(parse(vars, "SESSION_CACHE_MS", 5000)?),
            cache_prefix: get("CACHE_KEY_PREFIX").unwrap_or_else(|| "learntrac".into()),
            request_timeout: Duration::from_secs(parse(vars, "REQUEST_TIMEOUT_SECONDS", 10)?),
            body_limit: parse(vars, "BODY_LIMIT_BYTES", 64 * 1024)?,
            db_max_connections: parse(vars, "DATABASE_MAX_CONNECTIONS", 10)?,
            db_acquire_timeout: Duration::from_millis(parse(
                vars,
                "DATABASE_ACQUIRE_TIMEOUT_MS",
                2000,
            )?),
        })
    }
}

/// VOICE_ENGINE=openai's settings: the endpoint and key default to the chat's.
fn openai_voice(
    vars: &HashMap<String, String>,
) -> Result<crate::voice::openai::OpenAiVoiceConfig, ConfigError> {
    let get = |k: &str| vars.get(k).filter(|v| !v.is_empty()).cloned();
    let base_url = get("VOICE_BASE_URL")
        .or_else(|| get("CHAT_BASE_URL"))
        .ok_or_else(|| ConfigError {
            var: "VOICE_BASE_URL",
            problem: "VOICE_ENGINE=openai needs an endpoint: set VOICE_BASE_URL, or CHAT_BASE_URL \
                      (e.g. https://api.openai.com/v1)"
                .into(),
        })?;
    if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
        return Err(ConfigError {
            var: "VOICE_BASE_URL",
            problem: format!("`{}` is not an http(s):// URL", redact(&base_url)),
        });
    }
    Ok(crate::voice::openai::OpenAiVoiceConfig {
        base_url,
        api_key: get("VOICE_API_KEY").or_else(|| get("CHAT_API_KEY")),
        stt_model: get("VOICE_STT_MODEL").unwrap_or_else(|| "whisper-1".into()),
        tts_model: get("VOICE_TTS_MODEL").unwrap_or_else(|| "tts-1".into()),
        voice: get("VOICE_TTS_VOICE").unwrap_or_else(|| "alloy".into()),
        stall: Duration::from_secs(parse(vars, "VOICE_STALL_SECONDS", 20)?),
    })
}

/// VOICE_ENGINE=aws's settings: AWS's own variables (region, endpoints, CA bundle, keys)
/// and the language and voice.
fn aws_voice(
    vars: &HashMap<String, String>,
) -> Result<crate::voice::aws::AwsVoiceConfig, ConfigError> {
    let get = |k: &str| vars.get(k).filter(|v| !v.is_empty()).cloned();
    let endpoint = |service: &'static str| -> Result<Option<String>, ConfigError> {
        let (var, url) = match get(service) {
            Some(url) => (service, url),
            None => match get("AWS_ENDPOINT_URL") {
                Some(url) => ("AWS_ENDPOINT_URL", url),
                None => return Ok(None),
            },
        };
        if url.starts_with("https://") || url.starts_with("http://") {
            Ok(Some(url))
        } else {
            Err(ConfigError {
                var,
                problem: format!("`{}` is not an http(s):// URL", redact(&url)),
            })
        }
    };
    let keys = match (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => Some((id, secret, get("AWS_SESSION_TOKEN"))),
        _ => None,
    };
    Ok(crate::voice::aws::AwsVoiceConfig {
        region: get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION")),
        transcribe_endpoint: endpoint("AWS_ENDPOINT_URL_TRANSCRIBE_STREAMING")?,
        polly_endpoint: endpoint("AWS_ENDPOINT_URL_POLLY")?,
        ca_bundle: get("AWS_CA_BUNDLE").map(Into::into),
        keys,
        language: get("VOICE_LANGUAGE").unwrap_or_else(|| "en-US".into()),
        voice: get("VOICE_TTS_VOICE").unwrap_or_else(|| "Joanna".into()),
        polly_engine: get("VOICE_POLLY_ENGINE").unwrap_or_else(|| "neural".into()),
        stall: Duration::from_secs(parse(vars, "VOICE_STALL_SECONDS", 20)?),
    })
}

/// The chat tutor's settings: both CHAT_BASE_URL and CHAT_MODEL, or neither.
fn chat(vars: &HashMap<String, String>) -> Result<Option<crate::tutor::ChatSettings>, ConfigError> {
    let get = |k: &str| vars.get(k).filter(|v| !v.is_empty()).cloned();
    let (base_url, model) = match (get("CHAT_BASE_URL"), get("CHAT_MODEL")) {
        (None, None) => return Ok(None),
        (Some(b), Some(m)) => (b, m),
        (Some(_), None) => {
            return Err(ConfigError {
                var: "CHAT_MODEL",
                problem: "not set, but CHAT_BASE_URL is: name the model the endpoint serves".into(),
            });
        }
        (None, Some(_)) => {
            return Err(ConfigError {
                var: "CHAT_BASE_URL",
                problem: "not set, but CHAT_MODEL is: the OpenAI-compatible endpoint, e.g. https://api.openai.com/v1".into(),
            });
        }
    };
    if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
        return Err(ConfigError {
            var: "CHAT_BASE_URL",
            problem: format!("`{}` is not an http(s):// URL", redact(&base_url)),
        });
    }
    Ok(Some(crate::tutor::ChatSettings {
        model: crate::tutor::model::ModelConfig {
            base_url,
            model,
            api_key: get("CHAT_API_KEY"),
            timeout: Duration::from_secs(parse(vars, "CHAT_TIMEOUT_SECONDS", 120)?),
            stall: Duration::from_secs(parse(vars, "CHAT_STALL_SECONDS", 20)?),
            max_tokens: parse(vars, "CHAT_MAX_TOKENS", 600)?,
        },
        daily_requests: parse(vars, "CHAT_DAILY_REQUESTS", 200)?,
        daily_tokens: parse(vars, "CHAT_DAILY_TOKENS", 200_000)?,
    }))
}

fn parse<T: std::str::FromStr>(
    vars: &HashMap<String, String>,
    var: &'static str,
    default: T,
) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match vars.get(var).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|e| ConfigError {
            var,
            problem: format!("`{v}`: {e}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn composes_the_url_from_ecs_parts_with_encoding() {
        let c = Config::from_vars(&vars(&[
            ("DATABASE_HOST", "db.internal"),
            ("DATABASE_NAME", "learntrac"),
            ("DATABASE_USER", "learntrac"),
            ("DATABASE_PASSWORD", "p@ss:w/rd"),
        ]))
        .expect("valid");
        assert_eq!(
            c.database_url,
            "postgres://learntrac:p%40ss%3Aw%2Frd@db.internal:5432/learntrac"
        );
        assert!(
            !format!("{c:?}").contains("p%40ss"),
            "Debug never shows the password"
        );
    }

    #[test]
    fn adds_tls_settings_as_libpq_url_parameters() {
        let c = Config::from_vars(&vars(&[
            ("DATABASE_HOST", "db.rds.amazonaws.com"),
            ("DATABASE_NAME", "learntrac"),
            ("DATABASE_USER", "learntrac"),
            ("DATABASE_PASSWORD", "pw"),
            ("DATABASE_SSLMODE", "verify-full"),
            ("DATABASE_SSLROOTCERT", "/etc/ssl/certs/rds-ca-bundle.pem"),
        ]))
        .expect("valid");
        assert_eq!(
            c.database_url,
            "postgres://learntrac:pw@db.rds.amazonaws.com:5432/learntrac?sslmode=verify-full&sslrootcert=%2Fetc%2Fssl%2Fcerts%2Frds-ca-bundle.pem"
        );
        let e = Config::from_vars(&vars(&[(
            "DATABASE_URL",
            "postgres://u:p@h/d?sslmode=verify_full",
        )]))
        .expect_err("a mode libpq does not know");
        assert_eq!(e.var, "DATABASE_SSLMODE");
    }

    #[test]
    fn openai_voice_takes_the_chats_endpoint_and_key_unless_told_otherwise() {
        let e = Config::from_vars(&vars(&[
            ("DATABASE_URL", "sqlite://x.db"),
            ("VOICE_ENGINE", "openai"),
        ]))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(e.contains("VOICE_BASE_URL"), "{e}");
        let c = Config::from_vars(&vars(&[
            ("DATABASE_URL", "sqlite://x.db"),
            ("VOICE_ENGINE", "openai"),
            ("CHAT_BASE_URL", "https://api.openai.com/v1"),
            ("CHAT_MODEL", "gpt-4o-mini"),
            ("CHAT_API_KEY", "sk-chat"),
        ]))
        .ok()
        .and_then(|c| c.voice_openai)
        .expect("openai voice");
        assert_eq!(
            (
                c.base_url.as_str(),
                c.api_key.as_deref(),
                c.stt_model.as_str(),
                c.voice.as_str()
            ),
            (
                "https://api.openai.com/v1",
                Some("sk-chat"),
                "whisper-1",
                "alloy"
            )
        );
        assert!(
            !format!("{c:?}").contains("sk-chat"),
            "the key never in Debug"
        );
    }

    #[test]
    fn names_the_variable_at_fault() {
        let e = Config::from_vars(&vars(&[
            ("DATABASE_URL", "sqlite://x.db"),
            ("PORT", "eighty"),
        ]))
        .expect_err("invalid");
        assert_eq!(e.var, "PORT");
        let e = Config::from_vars(&vars(&[("DATABASE_HOST", "h")])).expect_err("invalid");
        assert_eq!(e.var, "DATABASE_NAME");
        let e = Config::from_vars(&vars(&[("DATABASE_URL", "mysql://x")])).expect_err("invalid");
        assert_eq!(e.var, "DATABASE_URL");
        let e = Config::from_vars(&vars(&[
            ("DATABASE_URL", "sqlite://x.db"),
            ("REDIS_URL", "rediss://cache:6379/#insecure"),
        ]))
        .expect_err("unverified TLS");
        assert_eq!(e.var, "REDIS_URL");
    }

    #[test]
    fn redis_auth_token_becomes_the_urls_password() {
        let c = Config::from_vars(&vars(&[
            ("DATABASE_URL", "sqlite://x.db"),
            ("REDIS_URL", "rediss://cache.example:6379"),
            ("REDIS_AUTH_TOKEN", "t0ken/with@odd"),
        ]))
        .expect("valid");
        assert_eq!(
            c.redis_url.as_deref(),
            Some("rediss://:t0ken%2Fwith%40odd@cache.example:6379")
        );
        assert!(!format!("{c:?}").contains("t0ken"), "{c:?}");
        for (url, var) in [
            (None, "REDIS_AUTH_TOKEN"),
            (Some("rediss://:other@cache:6379"), "REDIS_URL"),
        ] {
            let mut v = vec![("DATABASE_URL", "sqlite://x.db"), ("REDIS_AUTH_TOKEN", "t")];
            v.extend(url.map(|u| ("REDIS_URL", u)));
            let e = Config::from_vars(&vars(&v)).expect_err("refused");
            assert_eq!(e.var, var);
        }
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://u:secret@h:5/d"),
            "postgres://u:***@h:5/d"
        );
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
    }
}
