//! Loading environment files: YAML → typed [`Environment`], with every problem of a file
//! reported at once and located at `file:line:col`.

mod locate;
mod model;
pub mod routing;
mod validate;

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;
use serde_yaml::Value;

pub use crate::diagnostic::{Diagnostic, Diagnostics};
pub use locate::{Locations, Position};
pub use model::*;
pub use validate::{WIRED_VARIABLES, has_url_credentials, looks_secret, ssm_path_problem};

use crate::error::Error;

/// Top-level sections, in the order documentation and errors list them.
const SECTIONS: &[&str] = &[
    "project",
    "environment",
    "aws",
    "network",
    "services",
    "routing",
    "database",
    "cache",
    "tls",
    "monitoring",
    "terraform",
    "images",
    "registry",
    "local",
    "deploy",
];

/// The `environments/` folder of a project.
pub fn environments_dir(root: &Path) -> PathBuf {
    root.join("environments")
}

/// Names of every `*.yaml` environment under `root`, sorted.
pub fn available(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(environments_dir(root))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let p = e.path();
            (p.extension()? == "yaml").then(|| p.file_stem()?.to_str().map(String::from))?
        })
        .collect();
    names.sort();
    names
}

/// Loads and validates `environments/<name>.yaml` under `root`.
pub fn load(root: &Path, name: &str) -> Result<Environment, Error> {
    let file = environments_dir(root).join(format!("{name}.yaml"));
    let source = match std::fs::read_to_string(&file) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::UnknownEnvironment {
                name: name.to_string(),
                file,
                available: available(root),
            });
        }
        Err(e) => return Err(Error::io(format!("read {}", file.display()), e)),
    };
    parse(&file, &source, name).map_err(Error::Config)
}

/// Parses one environment file; `name` is the environment the file must declare.
pub fn parse(file: &Path, source: &str, name: &str) -> Result<Environment, Diagnostics> {
    let mut p = FileParser {
        file: file.to_path_buf(),
        locs: Locations::index(source),
        diags: Vec::new(),
    };
    let env = p.environment(source).and_then(|partial| {
        validate::check(&partial, name, &mut p);
        partial.complete()
    });
    match env {
        Some(env) if p.diags.is_empty() => Ok(env),
        _ => {
            p.diags.sort_by_key(|d| (d.line, d.column));
            Err(Diagnostics(p.diags))
        }
    }
}

/// Every section that parsed; `None` where a section was missing or had errors.
pub(crate) struct Partial {
    project: Option<String>,
    environment: Option<String>,
    aws: Option<Aws>,
    network: Option<Network>,
    trac: Option<Service>,
    learntrac: Option<Service>,
    /// Both services were present under `services` with no unknown siblings.
    services_complete: bool,
    routing: Option<Vec<RoutingRule>>,
    database: Option<Database>,
    cache: Option<Cache>,
    tls: Option<Tls>,
    monitoring: Option<Monitoring>,
    terraform: Option<TerraformSettings>,
    images: Option<BaseImages>,
    registry: Option<Option<String>>,
    local: Option<LocalStack>,
    deploy: Option<DeploySettings>,
}

impl Partial {
    fn complete(self) -> Option<Environment> {
        if !self.services_complete {
            return None;
        }
        Some(Environment {
            project: self.project?,
            environment: self.environment?,
            aws: self.aws?,
            network: self.network?,
            services: Services {
                trac: self.trac?,
                learntrac: self.learntrac?,
            },
            routing: self.routing?,
            database: self.database?,
            cache: self.cache?,
            tls: self.tls?,
            monitoring: self.monitoring?,
            terraform: self.terraform?,
            images: self.images?,
            registry: self.registry?,
            local: self.local?,
            deploy: self.deploy?,
        })
    }
}

pub(crate) struct FileParser {
    file: PathBuf,
    locs: Locations,
    diags: Vec<Diagnostic>,
}

impl FileParser {
    /// Reports a problem with the value at `key`.
    pub(crate) fn at_value(&mut self, key: &str, message: impl Into<String>) -> &mut Diagnostic {
        let at = self.locs.value(key);
        self.push(at, key, message)
    }

    /// Reports a problem with the key itself (unknown, duplicated, misplaced).
    pub(crate) fn at_key(&mut self, key: &str, message: impl Into<String>) -> &mut Diagnostic {
        let at = self.locs.key(key);
        self.push(at, key, message)
    }

    fn push(&mut self, at: Position, key: &str, message: impl Into<String>) -> &mut Diagnostic {
        self.diags
            .push(Diagnostic::new(self.file.clone(), at, key, message));
        let last = self.diags.len() - 1;
        &mut self.diags[last]
    }

    fn environment(&mut self, source: &str) -> Option<Partial> {
        let doc: Value = match serde_yaml::from_str(source) {
            Ok(v) => v,
            Err(e) => {
                let at = e.location().map_or(Position::START, |l| Position {
                    line: l.line(),
                    col: l.column(),
                });
                let msg = e.to_string();
                let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
                self.push(at, "", format!("not valid YAML: {msg}"));
                return None;
            }
        };
        let Value::Mapping(mut top) = doc else {
            self.push(Position::START, "", "an environment file must be a mapping")
                .expected = Some(format!("keys {}", SECTIONS.join(", ")));
            return None;
        };
        for key in top.keys() {
            let name = key.as_str().unwrap_or("?");
            if !SECTIONS.contains(&name) {
                self.at_key(name, format!("unknown key `{name}`")).expected =
                    Some(format!("one of {}", SECTIONS.join(", ")));
            }
        }
        let mut section = |name: &str| top.remove(name);

        let (trac, learntrac, services_complete) = self.services(section("services"));
        Some(Partial {
            project: self.required(section("project"), "project"),
            environment: self.required(section("environment"), "environment"),
            aws: self.required(section("aws"), "aws"),
            network: self.required(section("network"), "network"),
            trac,
            learntrac,
            services_complete,
            routing: self.routing(section("routing")),
            database: self.required(section("database"), "database"),
            cache: self.required(section("cache"), "cache"),
            tls: self.optional(section("tls"), "tls"),
            monitoring: self.required(section("monitoring"), "monitoring"),
            terraform: self.required(section("terraform"), "terraform"),
            images: self.required(section("images"), "images"),
            registry: self.optional(section("registry"), "registry"),
            local: self.optional(section("local"), "local"),
            deploy: self.optional(section("deploy"), "deploy"),
        })
    }

    fn required<T: DeserializeOwned>(&mut self, value: Option<Value>, key: &str) -> Option<T> {
        match value {
            Some(v) => self.typed(v, key),
            None => {
                self.push(Position::START, "", format!("missing section `{key}`"))
                    .expected = Some(format!(
                    "a top-level `{key}:` key (see docs/configuration.md)"
                ));
                None
            }
        }
    }

    fn optional<T: DeserializeOwned + Default>(
        &mut self,
        value: Option<Value>,
        key: &str,
    ) -> Option<T> {
        match value {
            Some(v) => self.typed(v, key),
            None => Some(T::default()),
        }
    }

    /// Each service is checked on its own so an error in one does not hide the other's.
    /// Returns both services and whether the section was otherwise complete.
    fn services(&mut self, value: Option<Value>) -> (Option<Service>, Option<Service>, bool) {
        let mut map = match value {
            Some(Value::Mapping(m)) => m,
            other => {
                let s = self.required::<Services>(other, "services");
                return match s {
                    Some(s) => (Some(s.trac), Some(s.learntrac), true),
                    None => (None, None, false),
                };
            }
        };
        let mut complete = true;
        let mut one = |me: &mut Self, name: &str| match map.remove(name) {
            Some(v) => me.typed::<Service>(v, &format!("services.{name}")),
            None => {
                me.at_key("services", format!("missing service `{name}`"))
                    .expected = Some(format!("a `{name}:` entry under services"));
                complete = false;
                None
            }
        };
        let trac = one(self, "trac");
        let learntrac = one(self, "learntrac");
        for name in map.keys().map(|k| k.as_str().unwrap_or("?").to_string()) {
            self.at_key(
                &format!("services.{name}"),
                format!("unknown service `{name}`"),
            )
            .expected = Some("the services `trac` and `learntrac`".into());
            complete = false;
        }
        (trac, learntrac, complete)
    }

    /// Each rule is checked on its own for the same reason.
    fn routing(&mut self, value: Option<Value>) -> Option<Vec<RoutingRule>> {
        let Some(Value::Sequence(items)) = value else {
            return self.required::<Vec<RoutingRule>>(value, "routing");
        };
        let rules: Vec<Option<RoutingRule>> = items
            .into_iter()
            .enumerate()
            .map(|(i, v)| self.typed(v, &format!("routing[{i}]")))
            .collect();
        rules.into_iter().collect()
    }

    /// Deserializes `value` (found at `base`), reporting every error serde can find: after
    /// each error the offending key is dropped and deserialization retried, and "missing
    /// field" errors caused by a dropped key are not reported twice.
    fn typed<T: DeserializeOwned>(&mut self, mut value: Value, base: &str) -> Option<T> {
        let mut dropped: Vec<String> = Vec::new();
        for _ in 0..64 {
            let err = match serde_path_to_error::deserialize::<_, T>(value.clone()) {
                Ok(v) if dropped.is_empty() => return Some(v),
                Ok(_) => return None,
                Err(e) => e,
            };
            let rel: Vec<Segment> = err.path().iter().cloned().collect();
            let path = join_path(base, err.path().to_string());
            let msg = err.inner().to_string();
            let cascade = missing_field(&msg)
                .is_some_and(|f| dropped.contains(&join_path(&path, f.to_string())));
            if !cascade {
                // Unknown and missing keys point at the key; wrong values at the value.
                let at = if msg.starts_with("unknown") || missing_field(&msg).is_some() {
                    self.locs.key(&path)
                } else {
                    self.locs.value(&path)
                };
                let (message, expected) = split_expected(&msg);
                let d = self.push(at, &path, message);
                d.expected = expected;
            }
            if rel.is_empty() || !remove(&mut value, &rel) {
                return None;
            }
            dropped.push(path);
        }
        None
    }
}

fn join_path(base: &str, rel: String) -> String {
    match rel.as_str() {
        "." | "" => base.to_string(),
        r if r.starts_with('[') => format!("{base}{r}"),
        r => format!("{base}.{r}"),
    }
}

fn missing_field(msg: &str) -> Option<&str> {
    msg.strip_prefix("missing field `")?.split('`').next()
}

/// serde says "…, expected X"; we show the expectation on its own line.
fn split_expected(msg: &str) -> (String, Option<String>) {
    match msg.rsplit_once(", expected ") {
        Some((m, e)) => (m.to_string(), Some(plain_type(e).to_string())),
        None => (msg.to_string(), None),
    }
}

/// Rust type names mean little to someone editing YAML.
fn plain_type(expected: &str) -> &str {
    match expected {
        "u16" => "a whole number from 0 to 65535",
        "u32" => "a whole number from 0 to 4294967295",
        "f64" => "a number",
        "a boolean" => "true or false",
        "a string" => "a string (quote values such as \"2.7\" or \"yes\")",
        other => other,
    }
}

/// Removes the node at `path` from `value`; false when it is not there.
fn remove(value: &mut Value, path: &[Segment]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut cur = value;
    for seg in parents {
        cur = match (seg, untag(cur)) {
            (Segment::Map { key } | Segment::Enum { variant: key }, Value::Mapping(m)) => {
                match m.get_mut(key.as_str()) {
                    Some(v) => v,
                    None => return false,
                }
            }
            (Segment::Seq { index }, Value::Sequence(s)) => match s.get_mut(*index) {
                Some(v) => v,
                None => return false,
            },
            _ => return false,
        };
    }
    match (last, untag(cur)) {
        (Segment::Map { key } | Segment::Enum { variant: key }, Value::Mapping(m)) => {
            m.remove(key.as_str()).is_some()
        }
        (Segment::Seq { index }, Value::Sequence(s)) if *index < s.len() => {
            s.remove(*index);
            true
        }
        _ => false,
    }
}

fn untag(v: &mut Value) -> &mut Value {
    match v {
        Value::Tagged(t) => untag(&mut t.value),
        other => other,
    }
}
