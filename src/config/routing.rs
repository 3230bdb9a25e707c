//! Warnings about a routing table that validates but does not do what it says: a rule that
//! can never match (earlier rules take all its paths), or a rule that takes paths another
//! service's rule names (the static-file rules of the original plan took `/api/…/x.js`
//! from the service). ALB patterns are globs over the raw path: `*` any run of characters,
//! `?` exactly one.

use super::{RoutingRule, ServiceName};

/// One finding, with where it is in the file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RoutingWarning {
    /// `routing[2].paths[0]`.
    pub at: String,
    pub message: String,
}

impl std::fmt::Display for RoutingWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

pub fn warnings(rules: &[RoutingRule]) -> Vec<RoutingWarning> {
    let mut order: Vec<usize> = (0..rules.len()).collect();
    order.sort_by_key(|&i| rules[i].priority);
    let mut out = Vec::new();
    for (rank, &i) in order.iter().enumerate() {
        let rule = &rules[i];
        let earlier = &order[..rank];
        let covered = rule.paths.iter().all(|p| {
            earlier
                .iter()
                .any(|&k| rules[k].paths.iter().any(|q| covers(q, p)))
        });
        if covered {
            out.push(RoutingWarning {
                at: format!("routing[{i}]"),
                message: format!(
                    "can never match: rules with a lower priority take every path it names (priority {})",
                    rule.priority
                ),
            });
            continue;
        }
        // A rule for one service taking paths that a later rule gives another.
        for &k in &order[rank + 1..] {
            let later = &rules[k];
            if later.service == rule.service {
                continue;
            }
            for (j, p) in rule.paths.iter().enumerate() {
                for q in &later.paths {
                    if let Some(example) = overlap(p, q) {
                        out.push(RoutingWarning {
                            at: format!("routing[{i}].paths[{j}]"),
                            message: format!(
                                "`{p}` ({}, priority {}) takes paths of `{q}` ({}, priority {}) first, e.g. {example}",
                                rule.service, rule.priority, later.service, later.priority
                            ),
                        });
                    }
                }
            }
        }
    }
    // Rules for the default service only matter where they take paths from another rule.
    for (i, rule) in rules.iter().enumerate() {
        if rule.service == ServiceName::DEFAULT_ROUTE
            && !out
                .iter()
                .any(|w| w.at.starts_with(&format!("routing[{i}]")))
            && !rules.iter().any(|other| {
                other.service != rule.service
                    && other.priority > rule.priority
                    && rule
                        .paths
                        .iter()
                        .any(|p| other.paths.iter().any(|q| overlap(p, q).is_some()))
            })
        {
            out.push(RoutingWarning {
                at: format!("routing[{i}]"),
                message: format!(
                    "unneeded: paths no rule matches go to {} already (the listener's default)",
                    ServiceName::DEFAULT_ROUTE
                ),
            });
        }
    }
    out
}

/// Whether every path `p` matches is matched by `q` (decided for the shapes routing tables
/// use: equal, `*`, a literal prefix then `*`, `*` then a literal suffix).
pub fn covers(q: &str, p: &str) -> bool {
    if q == p || q == "*" {
        return true;
    }
    let wild = |s: &str| s.contains(['*', '?']);
    if let Some(prefix) = q.strip_suffix('*')
        && !wild(prefix)
    {
        // Every string p matches starts with p's literal head.
        let head: String = p.chars().take_while(|c| *c != '*' && *c != '?').collect();
        return head.starts_with(prefix);
    }
    if let Some(suffix) = q.strip_prefix('*')
        && !wild(suffix)
    {
        let tail: String = {
            let mut t: Vec<char> = p
                .chars()
                .rev()
                .take_while(|c| *c != '*' && *c != '?')
                .collect();
            t.reverse();
            t.into_iter().collect()
        };
        return tail.ends_with(suffix);
    }
    false
}

/// A path both patterns match, if there is one: a search over pairs of positions in the
/// two patterns (each pattern is a small automaton; `*` loops, `?` takes any character).
pub fn overlap(a: &str, b: &str) -> Option<String> {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let (n, m) = (a.len(), b.len());
    // A state is a position in each pattern; parent[state] = (previous state, character
    // emitted on the way, if any).
    type State = (usize, usize);
    let mut parent: std::collections::HashMap<State, (State, Option<char>)> =
        std::collections::HashMap::new();
    let mut queue = std::collections::VecDeque::from([(0usize, 0usize)]);
    parent.insert((0, 0), ((0, 0), None));
    while let Some((i, j)) = queue.pop_front() {
        if i == n && j == m {
            let mut path = Vec::new();
            let mut at = (i, j);
            while at != (0, 0) {
                let (prev, c) = parent[&at];
                if let Some(c) = c {
                    path.push(c);
                }
                at = prev;
            }
            path.reverse();
            return Some(path.into_iter().collect());
        }
        let mut next: Vec<(State, Option<char>)> = Vec::new();
        // A star matching nothing.
        if i < n && a[i] == '*' {
            next.push(((i + 1, j), None));
        }
        if j < m && b[j] == '*' {
            next.push(((i, j + 1), None));
        }
        // One character both accept.
        if i < n && j < m {
            let (x, y) = (a[i], b[j]);
            let step = |c: char, at: usize| if c == '*' { at } else { at + 1 };
            let ch = match (x, y) {
                ('*' | '?', '*' | '?') => Some('x'),
                ('*' | '?', c) | (c, '*' | '?') => Some(c),
                (c, d) if c == d => Some(c),
                _ => None,
            };
            if let Some(c) = ch {
                next.push(((step(x, i), step(y, j)), Some(c)));
            }
        }
        for (state, c) in next {
            if let std::collections::hash_map::Entry::Vacant(e) = parent.entry(state) {
                e.insert(((i, j), c));
                queue.push_back(state);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::router::matches;

    fn rule(priority: u32, service: ServiceName, paths: &[&str]) -> RoutingRule {
        RoutingRule {
            priority,
            service,
            paths: paths.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn overlap_finds_a_path_both_match_and_only_then() {
        let cases = [
            ("*.js", "/api/analytics/*", true),
            ("/api/LearnTrac/*", "/wiki/*", false),
            ("/a?c", "/abc", true),
            ("/a?c", "/ac", false),
            ("*", "/x", true),
            ("/t*e/*", "/timeline/*", true),
            ("*.png", "*.jpg", false),
        ];
        for (a, b, want) in cases {
            let got = overlap(a, b);
            assert_eq!(got.is_some(), want, "{a} ∩ {b}: {got:?}");
            if let Some(path) = got {
                assert!(
                    matches(a, &path) && matches(b, &path),
                    "{path} matches both {a} and {b}"
                );
            }
        }
    }

    #[test]
    fn covers_the_shapes_routing_tables_use() {
        assert!(covers("/api/*", "/api/LearnTrac/*"));
        assert!(covers("*.js", "/chrome/*.js"));
        assert!(covers("*", "/anything"));
        assert!(!covers("/api/LearnTrac/*", "/api/*"));
        assert!(!covers("*.js", "/chrome/*"));
    }

    #[test]
    fn the_original_plans_table_gets_its_warnings() {
        let rules = vec![
            rule(80, ServiceName::Trac, &["/chrome/*", "*.css", "*.js"]),
            rule(
                90,
                ServiceName::Learntrac,
                &["/api/LearnTrac/*", "/api/analytics/*"],
            ),
            rule(100, ServiceName::Trac, &["/wiki/*"]),
            rule(110, ServiceName::Learntrac, &["/api/LearnTrac/concepts/*"]),
        ];
        let w = warnings(&rules);
        let text: Vec<String> = w.iter().map(ToString::to_string).collect();
        assert!(
            text.iter().any(|t| t.starts_with(
                "routing[0].paths[2]: `*.js` (trac, priority 80) takes paths of `/api/LearnTrac/*`"
            )),
            "{text:#?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("routing[3]: can never match")),
            "{text:#?}"
        );
        assert!(
            text.iter().any(|t| t.starts_with("routing[2]: unneeded")),
            "{text:#?}"
        );
        assert!(
            !text.iter().any(|t| t.starts_with("routing[1]")),
            "{text:#?}"
        );
    }
}
