//! Router parity: for every rule of every environment, a path that the *rendered* ALB
//! listener rules send to a service, the local router sends there too — including paths no
//! rule matches. The reference reads the rules back out of the rendered main.tf and
//! evaluates them with an independent matcher (globset).

mod common;

use common::render_repo_env;
use globset::GlobBuilder;
use learntrac::config::{self, ServiceName};
use learntrac::local::router::route;

/// (priority, service, patterns) from the `routing_rules` of a rendered main.tf.
fn rendered_rules(main_tf: &str) -> Vec<(u32, String, Vec<String>)> {
    main_tf
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("{ priority = "))
        .map(|l| {
            let priority = l["{ priority = ".len()..]
                .split(',')
                .next()
                .and_then(|p| p.trim().parse().ok())
                .expect("priority");
            let service = l
                .split("service = \"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .expect("service")
                .to_string();
            let list = l
                .split("paths = [")
                .nth(1)
                .and_then(|s| s.split(']').next())
                .expect("paths");
            let paths = list
                .split(", ")
                .map(|p| p.trim_matches('"').to_string())
                .collect();
            (priority, service, paths)
        })
        .collect()
}

fn alb(rules: &[(u32, String, Vec<String>)], path: &str) -> Option<String> {
    let mut sorted = rules.to_vec();
    sorted.sort_by_key(|r| r.0);
    sorted
        .into_iter()
        .find(|(_, _, pats)| {
            pats.iter().any(|p| {
                GlobBuilder::new(p)
                    .literal_separator(false)
                    .backslash_escape(false)
                    .build()
                    .expect("glob")
                    .compile_matcher()
                    .is_match(path)
            })
        })
        .map(|r| r.1)
}

/// Paths each pattern should and might not match: wildcards filled several ways.
fn samples(pattern: &str) -> Vec<String> {
    let mut out = vec![];
    for star in ["", "x", "a/b", "deep/er/file.css"] {
        for q in ["q", "/"] {
            out.push(pattern.replace('*', star).replace('?', q));
        }
    }
    out.push(pattern.replace('*', "").trim_end_matches('/').to_string());
    out.push(pattern.to_uppercase().replace('*', "x"));
    out
}

#[test]
fn local_router_matches_rendered_alb_rules_in_every_environment() {
    let mut checked = 0;
    for env_name in ["dev", "prod", "local"] {
        let env = config::load(&common::repo_root(), env_name).expect("environment");
        let out = render_repo_env(env_name);
        let main = std::fs::read_to_string(out.path().join("terraform/main.tf")).expect("main.tf");
        let rules = rendered_rules(&main);
        assert_eq!(
            rules.len(),
            env.routing.len(),
            "{env_name}: every rule rendered"
        );
        let mut paths: Vec<String> = rules
            .iter()
            .flat_map(|r| r.2.iter().flat_map(|p| samples(p)))
            .collect();
        paths.extend(
            [
                "/",
                "/nowhere",
                "/api",
                "/api/LearnTrac",
                "/api/LearnTrac/health",
                "/api/LearnTrac/x.js",
                "/LOGIN",
                "/login",
                "/logout/",
            ]
            .map(String::from),
        );
        for path in &paths {
            let want = alb(&rules, path);
            let got = route(&env.routing, path).map(|s: ServiceName| s.to_string());
            assert_eq!(got, want, "{env_name}: {path}");
            checked += 1;
        }
    }
    assert!(checked > 500, "{checked} paths checked");
}
