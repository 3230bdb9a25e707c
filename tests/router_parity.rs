//! Router parity: for every rule of every environment, a path that the *rendered* ALB
//! listener rules send to a service, the local router sends there too — including paths no
//! rule matches, which go where the rendered listener's default action forwards. The
//! reference reads the rules and the default back out of the rendered Terraform and
//! evaluates them with an independent matcher (globset), on the paths of every rule, Trac's
//! own navigation links and a few thousand generated paths.

mod common;

use common::render_repo_env;
use globset::{GlobBuilder, GlobMatcher};
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

/// The target group the rendered listeners' default action forwards to (both listeners
/// agree, or the HTTP one redirects to HTTPS).
fn rendered_default(alb_tf: &str) -> String {
    let defaults: Vec<String> = alb_tf
        .split("default_action {")
        .skip(1)
        .filter_map(|block| {
            let block = block.split("\n  }").next()?;
            let tg = block.split("aws_lb_target_group.service[\"").nth(1)?;
            tg.split('"').next().map(String::from)
        })
        .collect();
    assert!(
        !defaults.is_empty(),
        "a default action that forwards:\n{alb_tf}"
    );
    assert!(defaults.iter().all(|d| d == &defaults[0]), "{defaults:?}");
    defaults[0].clone()
}

/// Paths generated from the pieces routing tables and real clients use.
fn generated_paths(count: usize) -> Vec<String> {
    const PIECES: &[&str] = &[
        "api",
        "LearnTrac",
        "learntrac",
        "analytics",
        "chat",
        "voice",
        "wiki",
        "ticket",
        "timeline",
        "chrome",
        "x.js",
        "a.css",
        "logo.png",
        "",
        "milestones",
        "1",
        "%2F",
        "login",
        "..",
        ".",
        "a b",
        "é",
    ];
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        usize::try_from(seed % n as u64).unwrap_or(0)
    };
    (0..count)
        .map(|_| {
            let segments = 1 + next(5);
            let mut p = String::new();
            for _ in 0..segments {
                p.push('/');
                p.push_str(PIECES[next(PIECES.len())]);
            }
            if next(4) == 0 {
                p.push('/');
            }
            p
        })
        .collect()
}

/// The rendered rules as the reference evaluates them: ascending priority, each pattern a
/// compiled glob.
fn alb_matcher(rules: &[(u32, String, Vec<String>)]) -> Vec<(String, Vec<GlobMatcher>)> {
    let mut sorted = rules.to_vec();
    sorted.sort_by_key(|r| r.0);
    sorted
        .into_iter()
        .map(|(_, service, pats)| {
            let globs = pats
                .iter()
                .map(|p| {
                    GlobBuilder::new(p)
                        .literal_separator(false)
                        .backslash_escape(false)
                        .build()
                        .expect("glob")
                        .compile_matcher()
                })
                .collect();
            (service, globs)
        })
        .collect()
}

fn alb(rules: &[(String, Vec<GlobMatcher>)], path: &str) -> Option<String> {
    rules
        .iter()
        .find(|(_, globs)| globs.iter().any(|g| g.is_match(path)))
        .map(|r| r.0.clone())
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
        let alb_tf = std::fs::read_to_string(out.path().join("terraform/modules/alb/main.tf"))
            .expect("alb main.tf");
        let default = rendered_default(&alb_tf);
        assert_eq!(default, ServiceName::DEFAULT_ROUTE.to_string());
        let mut paths: Vec<String> = rules
            .iter()
            .flat_map(|r| r.2.iter().flat_map(|p| samples(p)))
            .collect();
        paths.extend(
            [
                // Trac's own navigation, as its pages link it.
                "/",
                "/wiki",
                "/wiki/WikiStart",
                "/timeline",
                "/roadmap",
                "/report",
                "/report/1",
                "/query",
                "/newticket",
                "/search",
                "/browser",
                "/admin",
                "/prefs",
                "/about",
                "/login",
                "/logout",
                "/milestone/algebra",
                "/ticket/1",
                "/attachment/ticket/1/notes.txt",
                "/chrome/common/css/trac.css",
                // LearnTrac's, and near misses.
                "/nowhere",
                "/api",
                "/api/LearnTrac",
                "/api/LearnTrac/health",
                "/api/LearnTrac/x.js",
                "/api/analytics/milestones/release.js",
                "/api/learntrac/health",
                "/LOGIN",
                "/logout/",
            ]
            .map(String::from),
        );
        paths.extend(generated_paths(3000));
        let reference = alb_matcher(&rules);
        for path in &paths {
            let want = alb(&reference, path).unwrap_or_else(|| default.clone());
            let got = route(&env.routing, path).to_string();
            assert_eq!(got, want, "{env_name}: {path}");
            checked += 1;
        }
        // Trac's pages reach Trac; LearnTrac's API reaches the service.
        for path in [
            "/",
            "/timeline",
            "/newticket",
            "/milestone/algebra",
            "/chrome/common/js/jquery.js",
        ] {
            assert_eq!(
                route(&env.routing, path),
                ServiceName::Trac,
                "{env_name}: {path}"
            );
        }
        for path in [
            "/api/LearnTrac/health",
            "/api/analytics/milestones/release.js",
        ] {
            assert_eq!(
                route(&env.routing, path),
                ServiceName::Learntrac,
                "{env_name}: {path}"
            );
        }
    }
    assert!(checked > 9000, "{checked} paths checked");
}
