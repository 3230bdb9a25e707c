//! Every value of an environment file that can reach a template, fed something that would
//! become code: a newline followed by an instruction, quotes, `${`/`%{` interpolation, a
//! backslash, control and terminal-escape characters. Each must be either refused by
//! validation (exit 2, at file:line:col, shown escaped) or rendered as data: every
//! Terraform file still parses (`terraform fmt`), the interpolation is escaped (`$${`,
//! `%%{`), no injected line starts a line of any rendered file, and no control character
//! reaches a file or the terminal. The fields come from `config show` (every key, defaults
//! included, optional ones filled), so a field added later is covered without editing this.

mod common;

use std::path::Path;

use common::{Cli, Project};
use serde_json::Value;

/// What an attacker would put in a value.
const NASTY: &str = "x\"'\\\nINJECTED ${INJ}%{INJ}\u{1b}[31m\u{7}\tz";

#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

/// Where a string lives: the value at `path`, or the key `path`'s last step names.
#[derive(Debug, Clone)]
struct Site {
    path: Vec<Step>,
    key: bool,
}

impl Site {
    fn show(&self) -> String {
        let mut s = String::new();
        for step in &self.path {
            match step {
                Step::Key(k) if s.is_empty() => s.push_str(k),
                Step::Key(k) => s.push_str(&format!(".{k}")),
                Step::Index(i) => s.push_str(&format!("[{i}]")),
            }
        }
        if self.key { format!("{s} (key)") } else { s }
    }
}

fn sites(v: &Value, path: &mut Vec<Step>, out: &mut Vec<Site>) {
    match v {
        Value::String(_) => out.push(Site {
            path: path.clone(),
            key: false,
        }),
        Value::Object(m) => {
            for (k, child) in m {
                path.push(Step::Key(k.clone()));
                // Keys of free-form maps (environment, secrets, tags) are data too.
                if matches!(child, Value::String(_)) && is_free_map(path) {
                    out.push(Site {
                        path: path.clone(),
                        key: true,
                    });
                }
                sites(child, path, out);
                path.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                path.push(Step::Index(i));
                sites(child, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn is_free_map(path: &[Step]) -> bool {
    let parent = path.len().checked_sub(2).and_then(|i| path.get(i));
    matches!(parent, Some(Step::Key(k)) if ["environment", "secrets", "public_subnet_tags", "private_subnet_tags"].contains(&k.as_str()))
}

/// Makes the injected value from the original one.
type Make = dyn Fn(&str) -> String;

/// The value at `site` replaced by `make(original)`.
fn inject(doc: &Value, site: &Site, make: &Make) -> Value {
    let mut doc = doc.clone();
    let mut at = &mut doc;
    let (last, parents) = site.path.split_last().expect("non-empty path");
    for step in parents {
        at = match step {
            Step::Key(k) => &mut at[k.as_str()],
            Step::Index(i) => &mut at[*i],
        };
    }
    match (last, site.key) {
        (Step::Key(k), true) => {
            let map = at.as_object_mut().expect("a map");
            let value = map.remove(k).expect("the key");
            map.insert(make(k), value);
        }
        (Step::Key(k), false) => {
            let new = make(at[k.as_str()].as_str().unwrap_or_default());
            at[k.as_str()] = Value::String(new);
        }
        (Step::Index(i), _) => {
            let new = make(at[*i].as_str().unwrap_or_default());
            at[*i] = Value::String(new);
        }
    }
    doc
}

/// The repository's dev environment as `config show` resolves it, with every optional
/// string given a valid value so it reaches the templates.
fn base(project: &Project) -> Value {
    let show = Cli::new()
        .root(project.path())
        .args(["config", "show", "dev", "-o", "json"])
        .run();
    assert_eq!(show.code, 0, "{}", show.stderr);
    let mut doc: Value = serde_json::from_str(&show.stdout).expect("config show JSON");
    doc.as_object_mut().expect("map").remove("derived");
    doc["aws"]["account_id"] = "123456789012".into();
    doc["aws"]["endpoint"] = "http://127.0.0.1:5000".into();
    doc["network"]["public_subnet_tags"] = serde_json::json!({"Tier": "public"});
    doc["network"]["private_subnet_tags"] = serde_json::json!({"Tier": "private"});
    doc["tls"]["certificate_arn"] = "arn:aws:acm:us-east-2:123456789012:certificate/abc-123".into();
    doc["monitoring"]["alert_email"] = "ops@school.edu".into();
    doc["terraform"]["s3"]["region"] = "us-east-2".into();
    doc["registry"] = "registry.school.edu:5000".into();
    doc["deploy"]["public_url"] = "https://learn.school.edu".into();
    doc
}

fn render(project: &Project, doc: &Value, out: &Path) -> common::Run {
    let yaml = serde_yaml::to_string(doc).expect("YAML");
    std::fs::write(project.env_file("dev"), yaml).expect("write dev.yaml");
    let _ = std::fs::remove_dir_all(out);
    Cli::new()
        .root(project.path())
        .args([
            "render".as_ref(),
            "dev".as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
        ])
        .run()
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    common::files_under(dir)
        .into_iter()
        .map(|rel| {
            let bytes = std::fs::read(dir.join(&rel)).expect("read");
            (rel, bytes)
        })
        .collect()
}

/// What is wrong with a rendered tree that took `NASTY` as data, if anything.
fn rendered_problems(out: &Path, terraform: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let mut seen = false;
    for (rel, bytes) in files(out) {
        let text = String::from_utf8_lossy(&bytes);
        seen |= text.contains("INJ");
        if bytes.iter().any(|b| *b == 0x1b || *b == 0x07) {
            problems.push(format!("{rel}: a raw control character"));
        }
        if text.lines().any(|l| l.trim_start().starts_with("INJECTED")) {
            problems.push(format!("{rel}: the injected line starts a line"));
        }
        if rel.ends_with(".tf") || rel.ends_with(".hcl") {
            for (i, _) in text.match_indices("${INJ}") {
                if !text[..i].ends_with('$') {
                    problems.push(format!("{rel}: `${{` not escaped"));
                }
            }
            for (i, _) in text.match_indices("%{INJ}") {
                if !text[..i].ends_with('%') {
                    problems.push(format!("{rel}: `%{{` not escaped"));
                }
            }
        }
    }
    let fmt = std::process::Command::new(terraform)
        .args(["fmt", "-recursive", "-check", "-list=false"])
        .arg(out.join("terraform"))
        .output()
        .expect("terraform fmt");
    // Exit 3 only reports formatting; anything else is a file that does not parse.
    if !matches!(fmt.status.code(), Some(0 | 3)) {
        problems.push(format!(
            "terraform cannot parse the result: {}",
            String::from_utf8_lossy(&fmt.stderr)
        ));
    }
    if !seen {
        problems.push("the value reached no rendered file (is it used?)".into());
    }
    problems
}

#[test]
fn every_template_reaching_value_is_refused_or_rendered_as_data() {
    // On PATH: scripts/test checks for it.
    let terraform = std::path::PathBuf::from("terraform");
    let project = Project::new();
    let out = project.path().join("out");
    let doc = base(&project);
    let clean = render(&project, &doc, &out);
    assert_eq!(
        clean.code, 0,
        "the filled-in base renders: {}",
        clean.stderr
    );

    let mut all = Vec::new();
    sites(&doc, &mut Vec::new(), &mut all);
    assert!(all.len() >= 40, "{} sites", all.len());
    let (mut refused, mut data, mut unused, mut failures) = (vec![], vec![], vec![], vec![]);
    // The value alone, and after a valid one (a check of the start only would pass it).
    let alone = |_: &str| NASTY.to_string();
    let appended = |original: &str| format!("{original}{NASTY}");
    let variants: [(&str, &Make); 2] = [("alone", &alone), ("after the valid value", &appended)];
    for (site, (how, make)) in all
        .iter()
        .flat_map(|s| variants.iter().map(move |v| (s, v)))
    {
        let run = render(&project, &inject(&doc, site, *make), &out);
        let name = format!("{} ({how})", site.show());
        match run.code {
            2 => {
                let located = run.stderr.contains("dev.yaml:");
                let raw = run.stderr.contains('\x1b') || run.stderr.contains('\x07');
                if !located || raw {
                    failures.push(format!(
                        "{name}: refused, but {}: {}",
                        if raw {
                            "with raw control characters"
                        } else {
                            "without file:line:col"
                        },
                        run.stderr.escape_debug()
                    ));
                } else {
                    refused.push(name);
                }
            }
            0 => {
                let problems = rendered_problems(&out, &terraform);
                if problems == ["the value reached no rendered file (is it used?)"] {
                    unused.push(name);
                } else if problems.is_empty() {
                    data.push(name);
                } else {
                    failures.push(format!("{name}: {problems:?}"));
                }
            }
            code => failures.push(format!(
                "{name}: exit {code}: {}",
                run.stderr.escape_debug()
            )),
        }
    }
    let report = format!(
        "refused at validation ({}):\n  {}\nrendered as data ({}):\n  {}\naccepted, reaching no template ({}):\n  {}\nfailures ({}):\n  {}\n",
        refused.len(),
        refused.join("\n  "),
        data.len(),
        data.join("\n  "),
        unused.len(),
        unused.join("\n  "),
        failures.len(),
        failures.join("\n  ")
    );
    let artifacts = common::repo_root().join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).expect("artifacts");
    std::fs::write(artifacts.join("injection.txt"), &report).expect("report");
    assert!(failures.is_empty(), "{report}");
}
