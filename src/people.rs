//! A school's people as Trac's logins. A login is an htdigest line (realm LearnTrac) in the
//! environment's `TRAC_HTDIGEST` secret, which the Trac task reads when it starts; the first
//! line is Trac's administrator (bootstrap's `--trac-admin`; start-trac.sh grants it
//! TRAC_ADMIN). A school loads its people from a roster — a CSV as its systems export it —
//! and the passwords of the people added are handed out from a private file, once.

use serde::Serialize;

use crate::bootstrap::htdigest;
use crate::error::{Error, Result};

/// What one SSM parameter holds: 4 KB in the standard tier, 8 KB in the advanced one
/// (which Parameter Store's intelligent tiering moves a parameter to when it grows).
pub const SSM_STANDARD_BYTES: usize = 4096;
pub const SSM_MAX_BYTES: usize = 8192;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Student,
    Teacher,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Person {
    pub login: String,
    pub role: Role,
}

const ROSTER_SHAPE: &str = "a CSV with a header row naming a `login` column (or `username`) \
and, optionally, `role` (student or teacher; empty means student), comma- or \
semicolon-separated, e.g.\n      login,role\n      alice,student\n      carol,teacher";

/// The roster's people, or every problem in it as `file:line:col: what` (nothing is used
/// from a roster with a problem).
pub fn parse_roster(file: &str, text: &str) -> Result<Vec<Person>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first = text.lines().next().unwrap_or_default();
    let delimiter = if first.contains(';') && !first.contains(',') {
        ';'
    } else {
        ','
    };
    let mut records = records(text, delimiter).into_iter();
    let invalid = |problems: Vec<String>| Error::Invalid {
        what: format!(
            "{file}: {} problem{}; nothing was changed\n    {}",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" },
            problems.join("\n    ")
        ),
        hint: format!("expected {ROSTER_SHAPE}"),
    };
    let Some((_, header)) = records.next() else {
        return Err(invalid(vec![format!("{file}:1:1: the roster is empty")]));
    };
    let column = |names: &[&str]| {
        header
            .iter()
            .position(|(_, h)| names.contains(&h.trim().to_ascii_lowercase().as_str()))
    };
    let Some(login_at) = column(&["login", "username", "user"]) else {
        return Err(invalid(vec![format!(
            "{file}:1:1: no `login` column in the header ({})",
            header
                .iter()
                .map(|(_, h)| format!("`{}`", h.trim()))
                .collect::<Vec<_>>()
                .join(", ")
        )]));
    };
    let role_at = column(&["role"]);
    let mut people: Vec<Person> = Vec::new();
    let mut seen: std::collections::HashMap<String, usize> = Default::default();
    let mut problems = Vec::new();
    for (line, fields) in records {
        let field = |i: Option<usize>| i.and_then(|i| fields.get(i));
        let Some((col, login)) = field(Some(login_at)) else {
            problems.push(format!("{file}:{line}:1: no login in this row"));
            continue;
        };
        let login = login.trim();
        if let Some(why) = login_problem(login) {
            problems.push(format!("{file}:{line}:{col}: login `{login}` {why}"));
            continue;
        }
        let role = match field(role_at).map(|(c, r)| (c, r.trim().to_ascii_lowercase())) {
            None => Role::Student,
            Some((_, r)) if r.is_empty() || r == "student" => Role::Student,
            Some((_, r)) if r == "teacher" => Role::Teacher,
            Some((c, r)) => {
                problems.push(format!(
                    "{file}:{line}:{c}: role `{r}` is neither student nor teacher"
                ));
                continue;
            }
        };
        if let Some(before) = seen.insert(login.to_string(), line) {
            problems.push(format!(
                "{file}:{line}:{col}: login `{login}` is also on line {before}"
            ));
            continue;
        }
        people.push(Person {
            login: login.to_string(),
            role,
        });
    }
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    Ok(people)
}

/// Why Trac or the htdigest file could not take `login`, if they could not.
pub fn login_problem(login: &str) -> Option<&'static str> {
    if login.is_empty() {
        return Some("is empty");
    }
    if login.len() > 64 {
        return Some("is longer than 64 characters");
    }
    if !login
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Some("may hold only letters, digits and . _ - @");
    }
    // Trac reads an all-capitals name as a permission, and these as its own groups.
    if !login
        .chars()
        .any(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    {
        return Some("is all capitals, which Trac reads as a permission name");
    }
    if matches!(login, "anonymous" | "authenticated" | "teachers") {
        return Some("is one of Trac's group names");
    }
    None
}

/// CSV records (RFC 4180: quoted fields may hold the delimiter, quotes doubled, line
/// breaks), each with the line it starts on and each field with its column; blank lines
/// are skipped.
fn records(text: &str, delimiter: char) -> Vec<(usize, Vec<(usize, String)>)> {
    let mut out = Vec::new();
    let (mut line, mut col) = (1usize, 1usize);
    let mut record: Vec<(usize, String)> = Vec::new();
    let (mut field, mut field_col, mut record_line) = (String::new(), 1usize, 1usize);
    let (mut quoted, mut chars) = (false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                col += 1;
                field.push('"');
            }
            '"' if quoted => quoted = false,
            '"' if field.trim().is_empty() => {
                quoted = true;
                field.clear();
            }
            '\n' if quoted => {
                field.push('\n');
                line += 1;
                col = 0;
            }
            c if c == delimiter && !quoted => {
                record.push((field_col, std::mem::take(&mut field)));
                field_col = col + 1;
            }
            '\r' if !quoted && chars.peek() == Some(&'\n') => {}
            '\n' => {
                record.push((field_col, std::mem::take(&mut field)));
                if record.iter().any(|(_, f)| !f.trim().is_empty()) {
                    out.push((record_line, std::mem::take(&mut record)));
                }
                record.clear();
                line += 1;
                col = 0;
                field_col = 1;
                record_line = line;
            }
            c => field.push(c),
        }
        col += 1;
    }
    record.push((field_col, field));
    if record.iter().any(|(_, f)| !f.trim().is_empty()) {
        out.push((record_line, record));
    }
    out
}

/// The logins of htdigest lines, in order.
pub fn logins(lines: &str) -> Vec<String> {
    lines
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(':').next().unwrap_or_default().to_string())
        .collect()
}

/// A roster merged into the secret's lines.
#[derive(Debug)]
pub struct Merged {
    /// The secret's new value: its lines as they were, in order, then one per new person.
    pub lines: String,
    /// The people added, each with the password made for them.
    pub added: Vec<(Person, String)>,
    /// The roster's people who had a login already (their passwords are not touched).
    pub kept: Vec<Person>,
}

/// Adds the roster's people who have no login to `existing`, each with a password from
/// `password`.
pub fn merge(
    existing: &str,
    roster: &[Person],
    mut password: impl FnMut() -> Result<String>,
) -> Result<Merged> {
    let have = logins(existing);
    let mut lines: Vec<String> = existing
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(String::from)
        .collect();
    let (mut added, mut kept) = (Vec::new(), Vec::new());
    for p in roster {
        if have.contains(&p.login) {
            kept.push(p.clone());
        } else {
            let pw = password()?;
            lines.push(htdigest(&p.login, &pw));
            added.push((p.clone(), pw));
        }
    }
    Ok(Merged {
        lines: lines.join("\n"),
        added,
        kept,
    })
}

/// `existing` without `remove`'s logins; refuses the first line (Trac's administrator) and
/// logins it does not hold.
pub fn remove(existing: &str, remove: &[String]) -> Result<String> {
    let have = logins(existing);
    if let Some(admin) = have.first().filter(|a| remove.contains(a)) {
        return Err(Error::Invalid {
            what: format!("`{admin}` is Trac's administrator (the secret's first login); nothing was changed"),
            hint: "give another person TRAC_ADMIN on Admin → Permissions first; the administrator's line stays first".into(),
        });
    }
    let unknown: Vec<&String> = remove.iter().filter(|r| !have.contains(r)).collect();
    if !unknown.is_empty() {
        return Err(Error::Invalid {
            what: format!(
                "no login {}; nothing was changed",
                unknown
                    .iter()
                    .map(|u| format!("`{u}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            hint: "`learntrac people list ENV` shows the logins".into(),
        });
    }
    Ok(existing
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !remove.iter().any(|r| l.split(':').next() == Some(r)))
        .collect::<Vec<_>>()
        .join("\n"))
}

/// Refuses a value one SSM parameter cannot hold, saying how many more people would fit.
pub fn check_size(lines: &str) -> Result<()> {
    if lines.len() <= SSM_MAX_BYTES {
        return Ok(());
    }
    let n = logins(lines).len().max(1);
    let per = lines.len() / n + 1;
    Err(Error::Invalid {
        what: format!(
            "{n} logins take {} bytes; one SSM parameter holds at most {SSM_MAX_BYTES} (about {} logins like these); nothing was changed",
            lines.len(),
            SSM_MAX_BYTES / per
        ),
        hint: "load fewer people into this environment (e.g. one class at a time, removing those who left); signing in through the school's own directory is not built yet".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn people(csv: &str) -> Result<Vec<Person>> {
        parse_roster("roster.csv", csv)
    }

    #[test]
    fn rosters_as_schools_export_them() {
        let p = people("\u{feff}Login,Name,Role\r\nalice,\"Smith, Alice\",student\r\n\r\ncarol,\"Carol \"\"CJ\"\" Jones\",Teacher\r\nbob,Bob,\n")
            .expect("roster");
        assert_eq!(
            p,
            vec![
                Person {
                    login: "alice".into(),
                    role: Role::Student
                },
                Person {
                    login: "carol".into(),
                    role: Role::Teacher
                },
                Person {
                    login: "bob".into(),
                    role: Role::Student
                },
            ]
        );
        let p = people("username;class\ndan;7b\n").expect("semicolons, no role column");
        assert_eq!(p[0].login, "dan");
        assert_eq!(p[0].role, Role::Student);
    }

    #[test]
    fn every_problem_is_named_with_its_place() {
        let e = people("name,login,role\nAlice,alice,student\nBob,bo b,student\nCarol,carol,admin\nAl,alice,student\nX,TICKET_VIEW,\nY,a:b,\n")
            .expect_err("problems")
            .to_string();
        for want in [
            "roster.csv: 5 problems; nothing was changed",
            "roster.csv:3:5: login `bo b` may hold only",
            "roster.csv:4:13: role `admin` is neither",
            "roster.csv:5:4: login `alice` is also on line 2",
            "roster.csv:6:3: login `TICKET_VIEW` is all capitals",
            "roster.csv:7:3: login `a:b` may hold only",
            "login,role",
        ] {
            assert!(e.contains(want), "{want} in {e}");
        }
        let e = people("name,email\nA,a@x\n")
            .expect_err("no login")
            .to_string();
        assert!(
            e.contains("roster.csv:1:1: no `login` column in the header (`name`, `email`)"),
            "{e}"
        );
        assert!(people("").is_err());
        assert!(people("login\nanonymous\n").is_err());
    }

    #[test]
    fn a_quoted_field_may_span_lines_and_later_lines_keep_their_numbers() {
        let e = people("login,note\nalice,\"two\nlines\"\nb b,x\n")
            .expect_err("bad login")
            .to_string();
        assert!(e.contains("roster.csv:4:1: login `b b`"), "{e}");
    }

    #[test]
    fn merging_keeps_every_line_and_adds_only_new_people() {
        let existing = format!("{}\n{}\n", htdigest("admin", "a"), htdigest("alice", "x"));
        let roster =
            people("login,role\nalice,student\nbob,student\ncarol,teacher\n").expect("roster");
        let mut n = 0;
        let m = merge(&existing, &roster, || {
            n += 1;
            Ok(format!("pw{n}"))
        })
        .expect("merge");
        assert_eq!(logins(&m.lines), ["admin", "alice", "bob", "carol"]);
        assert!(
            m.lines.starts_with(&htdigest("admin", "a")),
            "administrator first"
        );
        assert!(
            m.lines.contains(&htdigest("alice", "x")),
            "alice's password kept"
        );
        assert!(m.lines.contains(&htdigest("bob", "pw1")));
        assert_eq!(m.added.len(), 2);
        assert_eq!(m.kept, vec![roster[0].clone()]);
        // Again: nothing to add.
        let again = merge(&m.lines, &roster, || Ok("never".into())).expect("merge");
        assert!(again.added.is_empty());
        assert_eq!(again.lines, m.lines);
    }

    #[test]
    fn removing_spares_the_administrator_and_names_unknown_logins() {
        let existing = format!(
            "{}\n{}\n{}",
            htdigest("admin", "a"),
            htdigest("alice", "x"),
            htdigest("bob", "y")
        );
        let left = remove(&existing, &["alice".into()]).expect("remove");
        assert_eq!(logins(&left), ["admin", "bob"]);
        assert!(
            remove(&existing, &["admin".into()])
                .expect_err("refused")
                .to_string()
                .contains("administrator")
        );
        assert!(
            remove(&existing, &["zed".into()])
                .expect_err("refused")
                .to_string()
                .contains("no login `zed`")
        );
    }

    #[test]
    fn a_secret_too_large_for_ssm_says_how_many_fit() {
        let lines: Vec<String> = (0..200)
            .map(|i| htdigest(&format!("student{i:03}"), "pw"))
            .collect();
        let e = check_size(&lines.join("\n"))
            .expect_err("refused")
            .to_string();
        assert!(e.contains("200 logins take"), "{e}");
        assert!(e.contains("about 151 logins"), "{e}");
        assert!(check_size(&lines[..100].join("\n")).is_ok());
    }
}
