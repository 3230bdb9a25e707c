//! Terraform and Dockerfiles from the embedded templates and one environment.

mod audit;
mod context;
mod hcl;
mod writer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use minijinja::syntax::SyntaxConfig;
use minijinja::{UndefinedBehavior, Value};

use crate::config::Environment;
use crate::error::{Error, Result};

pub use audit::{Finding, audit};
pub use context::{
    RenderContext, Wired, db_role, db_roles_container, secrets_of, task_secrets, wired_environment,
};
pub use writer::{WriteReport, write_tree};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/templates.rs"));
}

/// Relative output path → content, in a stable order.
pub type Files = BTreeMap<String, String>;

/// The template set: the embedded one, with files from an override folder replacing
/// (or adding to) it by relative path.
pub struct Templates {
    sources: BTreeMap<String, String>,
}

impl Templates {
    pub fn embedded() -> Self {
        Templates {
            sources: embedded::EMBEDDED
                .iter()
                .map(|(n, s)| ((*n).to_string(), (*s).to_string()))
                .collect(),
        }
    }

    pub fn with_overrides(mut self, dir: &Path) -> Result<Self> {
        let fail = |message: String| Error::TemplateOverride {
            dir: dir.to_path_buf(),
            message,
        };
        if !dir.is_dir() {
            return Err(fail("not a folder".into()));
        }
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let entries =
                std::fs::read_dir(&d).map_err(|e| fail(format!("{}: {e}", d.display())))?;
            for entry in entries {
                let path = entry.map_err(|e| fail(e.to_string()))?.path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let source = std::fs::read_to_string(&path)
                    .map_err(|e| fail(format!("{}: {e}", path.display())))?;
                let rel = path
                    .strip_prefix(dir)
                    .map_err(|e| fail(e.to_string()))?
                    .to_string_lossy()
                    .replace('\\', "/");
                self.sources.insert(rel, source);
            }
        }
        Ok(self)
    }

    /// Renders every template whose file name does not start with `_` (those are
    /// macros and partials) to its name without the `.j2` suffix.
    pub fn render(&self, env: &Environment) -> Result<Files> {
        let mut jinja = minijinja::Environment::new();
        jinja.set_undefined_behavior(UndefinedBehavior::Strict);
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .map_err(|e| template_error("(syntax)", &e))?;
        jinja.set_syntax(syntax);
        // HCL and shell spell booleans in lowercase; Jinja would print `True`.
        jinja.set_formatter(|out, state, value| {
            if value.kind() == minijinja::value::ValueKind::Bool {
                let text = if value.is_true() { "true" } else { "false" };
                out.write_str(text).map_err(|e| {
                    minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string())
                })
            } else {
                minijinja::escape_formatter(out, state, value)
            }
        });
        jinja.add_filter("hcl", |s: String| hcl::quote(&s));
        jinja.add_filter("pad", |s: String, width: usize| format!("{s:width$}"));
        for (name, source) in &self.sources {
            jinja
                .add_template_owned(name.clone(), source.clone())
                .map_err(|e| template_error(name, &e))?;
        }
        let ctx = Value::from(minijinja::value::Serde(RenderContext::new(env)));
        let mut files = Files::new();
        for name in self.sources.keys() {
            let Some(out) = name.strip_suffix(".j2") else {
                continue;
            };
            if Path::new(out)
                .file_name()
                .is_some_and(|f| f.to_string_lossy().starts_with('_'))
            {
                continue;
            }
            let tmpl = jinja
                .get_template(name)
                .map_err(|e| template_error(name, &e))?;
            let text = tmpl.render(&ctx).map_err(|e| template_error(name, &e))?;
            files.insert(out.to_string(), text);
        }
        let findings = audit::audit(&files);
        if !findings.is_empty() {
            return Err(Error::SecretExposed(findings));
        }
        Ok(files)
    }
}

fn template_error(name: &str, e: &minijinja::Error) -> Error {
    let mut message = e.to_string();
    if let Some(line) = e.line() {
        message = format!("line {line}: {message}");
    }
    Error::Template {
        name: name.to_string(),
        message,
    }
}

/// Renders `env` with the embedded templates, or with `overrides` laid over them.
pub fn render(env: &Environment, overrides: Option<&Path>) -> Result<Files> {
    let mut t = Templates::embedded();
    if let Some(dir) = overrides {
        t = t.with_overrides(dir)?;
    }
    t.render(env)
}

/// `.learntrac/ENV` under the project root.
pub fn default_out_dir(root: &Path, env: &str) -> PathBuf {
    root.join(".learntrac").join(env)
}
