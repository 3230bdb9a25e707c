//! The local router: the environment's routing rules applied exactly as the ALB applies
//! its listener rules — ascending priority, first match wins, whole-path patterns where
//! `*` matches any run of characters (slashes included) and `?` exactly one, case
//! sensitive, the query string ignored; a path no rule matches goes where the listener's
//! default action sends it (`ServiceName::DEFAULT_ROUTE`, Trac).

use crate::config::{RoutingRule, ServiceName};

/// The service a request path goes to: the first matching rule's, else the default's.
pub fn route(rules: &[RoutingRule], path: &str) -> ServiceName {
    let mut ordered: Vec<&RoutingRule> = rules.iter().collect();
    ordered.sort_by_key(|r| r.priority);
    ordered
        .into_iter()
        .find(|r| r.paths.iter().any(|p| matches(p, path)))
        .map_or(ServiceName::DEFAULT_ROUTE, |r| r.service)
}

/// ALB path-pattern matching (no character classes: validation rejects `[`).
pub fn matches(pattern: &str, path: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = path.chars().collect();
    // Classic wildcard matching with back-tracking on the last `*`.
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < s.len() {
        if i < p.len() && (p[i] == '?' || p[i] == s[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alb_pattern_semantics() {
        assert!(matches("/api/LearnTrac/*", "/api/LearnTrac/concepts/1"));
        assert!(matches("/api/LearnTrac/*", "/api/LearnTrac/"));
        assert!(!matches("/api/LearnTrac/*", "/api/LearnTrac"));
        assert!(
            !matches("/api/LearnTrac/*", "/api/learntrac/x"),
            "case sensitive"
        );
        assert!(
            matches("*.css", "/chrome/common/css/trac.css"),
            "* crosses slashes"
        );
        assert!(matches("/login", "/login"));
        assert!(!matches("/login", "/login/x"));
        assert!(matches("/t?cket/*", "/ticket/1"));
        assert!(!matches("/t?cket/*", "/tcket/1"));
        assert!(matches("*", ""));
    }

    #[test]
    fn priority_order_first_match_wins() {
        let rules = vec![
            RoutingRule {
                priority: 90,
                service: ServiceName::Learntrac,
                paths: vec!["/api/LearnTrac/*".into()],
            },
            RoutingRule {
                priority: 80,
                service: ServiceName::Trac,
                paths: vec!["*.js".into()],
            },
        ];
        assert_eq!(
            route(&rules, "/api/LearnTrac/app.js"),
            ServiceName::Trac,
            "80 before 90"
        );
        assert_eq!(
            route(&rules, "/api/LearnTrac/health"),
            ServiceName::Learntrac
        );
        assert_eq!(
            route(&rules, "/timeline"),
            ServiceName::Trac,
            "no rule: the default"
        );
    }
}
