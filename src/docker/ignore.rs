//! `.dockerignore` exactly as Docker reads it: a port of moby's `ignorefile.ReadAll` and
//! `patternmatcher` (github.com/moby/patternmatcher @ 5a6d842), quirks included, because
//! the file set we send must be the one `docker build` would send.
//!
//! Docker turns each pattern into a Go regular expression by copying characters through
//! (`*` → `[^/]*`, `?` → `[^/]`, `**` → `(.*/)?`, classes and `\` escapes verbatim) and lets
//! Go's regexp parser give that text its meaning. So `{a,b}` is literal, `[!x]` is a class
//! holding `!` and `x`, `[^x]` is negated, and `\w` is Go's ASCII word class. We build the
//! same Go text, then parse it the way Go's `regexp/syntax` does and write the same
//! language in Rust's syntax (see [`translate`]).
//!
//! Paths and patterns are bytes (file names need not be UTF-8). Go's regexp reads an
//! invalid byte as U+FFFD; [`go_lossy`] does the same before a regex match.

use regex::Regex;

/// Parse errors Docker reports for the same file (its CLI refuses to build).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    pub pattern: String,
    pub message: String,
}

impl std::fmt::Display for PatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pattern {:?}: {}", self.pattern, self.message)
    }
}

/// `ignorefile.ReadAll`: lines (a UTF-8 BOM stripped from the first), `#` comments only at
/// the very start of a line, trimmed, `!` split off, cleaned, one leading `/` dropped.
pub fn read_all(text: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (n, line) in lines(text).enumerate() {
        let line = if n == 0 {
            line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line)
        } else {
            line
        };
        if line.starts_with(b"#") {
            continue;
        }
        let mut pattern = trim_space(line);
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern[0] == b'!';
        if invert {
            pattern = trim_space(&pattern[1..]);
        }
        let mut p = Vec::new();
        if !pattern.is_empty() {
            p = clean(pattern);
            if p.len() > 1 && p[0] == b'/' {
                p.remove(0);
            }
        }
        if invert {
            p.insert(0, b'!');
        }
        out.push(p);
    }
    out
}

/// bufio.ScanLines: split at `\n`, drop one trailing `\r`, no empty last line.
fn lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let empty = text.is_empty();
    body.split(|b| *b == b'\n')
        .filter(move |_| !empty)
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

/// strings.TrimSpace: Unicode white space off both ends; stops at invalid UTF-8.
fn trim_space(mut b: &[u8]) -> &[u8] {
    while let Some((c, n)) = first_char(b) {
        if !c.is_whitespace() {
            break;
        }
        b = &b[n..];
    }
    while let Some((c, n)) = last_char(b) {
        if !c.is_whitespace() {
            break;
        }
        b = &b[..b.len() - n];
    }
    b
}

fn first_char(b: &[u8]) -> Option<(char, usize)> {
    (1..=b.len().min(4)).find_map(|n| {
        std::str::from_utf8(&b[..n])
            .ok()
            .and_then(|s| s.chars().next().map(|c| (c, n)))
    })
}

fn last_char(b: &[u8]) -> Option<(char, usize)> {
    (1..=b.len().min(4)).find_map(|n| {
        std::str::from_utf8(&b[b.len() - n..])
            .ok()
            .and_then(|s| s.chars().next().map(|c| (c, n)))
    })
}

/// Go's `path.Clean` (what `filepath.Clean` is on Unix).
pub fn clean(p: &[u8]) -> Vec<u8> {
    if p.is_empty() {
        return b".".to_vec();
    }
    let rooted = p[0] == b'/';
    let mut parts: Vec<&[u8]> = Vec::new();
    for seg in p.split(|b| *b == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => {
                if parts.last().is_some_and(|l| *l != b"..") {
                    parts.pop();
                } else if !rooted {
                    parts.push(seg);
                }
            }
            s => parts.push(s),
        }
    }
    let joined = parts.join(&b'/');
    match (rooted, joined.is_empty()) {
        (true, _) => [b"/".as_slice(), &joined].concat(),
        (false, true) => b".".to_vec(),
        (false, false) => joined,
    }
}

/// Go's regexp reads each invalid byte as U+FFFD.
pub fn go_lossy(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    let mut rest = b;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                break;
            }
            Err(e) => {
                let good = e.valid_up_to();
                // Valid by construction: from_utf8 said so up to here.
                out.push_str(std::str::from_utf8(&rest[..good]).unwrap_or_default());
                out.push('\u{FFFD}');
                rest = &rest[good + 1..];
            }
        }
    }
    out
}

enum Kind {
    Exact,
    Prefix,
    Suffix,
    Regex(Regex),
}

pub struct Pattern {
    cleaned: Vec<u8>,
    exclusion: bool,
    kind: Kind,
}

impl Pattern {
    pub fn exclusion(&self) -> bool {
        self.exclusion
    }

    pub fn text(&self) -> &[u8] {
        &self.cleaned
    }

    fn matches(&self, path: &[u8]) -> bool {
        match &self.kind {
            Kind::Exact => path == self.cleaned.as_slice(),
            Kind::Prefix => path.starts_with(&self.cleaned[..self.cleaned.len() - 2]),
            Kind::Suffix => {
                let suffix = &self.cleaned[2..];
                path.ends_with(suffix) || (suffix.first() == Some(&b'/') && path == &suffix[1..])
            }
            Kind::Regex(re) => re.is_match(&go_lossy(path)),
        }
    }
}

pub struct PatternMatcher {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

/// Per-pattern results for a folder, handed to its children (`MatchInfo`).
#[derive(Clone, Default)]
pub struct MatchInfo(Vec<bool>);

impl PatternMatcher {
    /// `patternmatcher.New` (with the pattern compiled at once, where Go compiles at first use).
    pub fn new(patterns: &[Vec<u8>]) -> Result<Self, PatternError> {
        let mut out = Vec::new();
        let mut exclusions = false;
        for raw in patterns {
            let p = trim_space(raw);
            if p.is_empty() {
                continue;
            }
            let mut p = clean(p);
            let err = |message: &str| PatternError {
                pattern: String::from_utf8_lossy(raw).into_owned(),
                message: message.to_string(),
            };
            let exclusion = p[0] == b'!';
            if exclusion {
                if p.len() == 1 {
                    return Err(err("illegal exclusion pattern: \"!\""));
                }
                p.remove(0);
                exclusions = true;
            }
            check_syntax(&p).map_err(|()| err("syntax error in pattern"))?;
            let kind = compile(&p).map_err(|m| err(&m))?;
            out.push(Pattern {
                cleaned: p,
                exclusion,
                kind,
            });
        }
        Ok(PatternMatcher {
            patterns: out,
            exclusions,
        })
    }

    pub fn exclusions(&self) -> bool {
        self.exclusions
    }

    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// `MatchesOrParentMatches`: the file or one of its folders is excluded.
    pub fn matches_or_parent_matches(&self, file: &[u8]) -> bool {
        let parents = parent_prefixes(file);
        let mut matched = false;
        for p in &self.patterns {
            if p.exclusion != matched {
                continue;
            }
            let hit = p.matches(file) || parents.iter().any(|d| p.matches(d));
            if hit {
                matched = !p.exclusion;
            }
        }
        matched
    }

    /// `MatchesUsingParentResults`, as the archive walk uses it.
    pub fn matches_using_parent(
        &self,
        file: &[u8],
        parent: Option<&MatchInfo>,
    ) -> (bool, MatchInfo) {
        let mut matched = false;
        let mut info = vec![false; self.patterns.len()];
        for (i, p) in self.patterns.iter().enumerate() {
            let mut hit = parent.is_some_and(|m| m.0[i]);
            if !hit {
                if p.exclusion != matched {
                    continue;
                }
                hit = p.matches(file);
                if !hit && parent.is_none() {
                    hit = parent_prefixes(file).iter().any(|d| p.matches(d));
                }
            }
            info[i] = hit;
            if hit {
                matched = !p.exclusion;
            }
        }
        (matched, MatchInfo(info))
    }
}

/// "a/b/c" → ["a", "a/b"].
fn parent_prefixes(file: &[u8]) -> Vec<&[u8]> {
    file.iter()
        .enumerate()
        .filter(|(_, b)| **b == b'/')
        .map(|(i, _)| &file[..i])
        .collect()
}

/// The error half of Go's `filepath.Match(p, ".")`: a class must close, hold at least one
/// item, have both ends of a range, and valid UTF-8; `\` must escape something.
fn check_syntax(p: &[u8]) -> Result<(), ()> {
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            b'\\' => {
                if i + 1 >= p.len() {
                    return Err(());
                }
                i += 2;
            }
            b'[' => {
                i += 1;
                if p.get(i) == Some(&b'^') {
                    i += 1;
                }
                let mut items = 0;
                loop {
                    if p.get(i) == Some(&b']') && items > 0 {
                        i += 1;
                        break;
                    }
                    i = class_char(p, i)?;
                    if p.get(i) == Some(&b'-') {
                        i = class_char(p, i + 1)?;
                    }
                    items += 1;
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Go's `getEsc`: one (possibly escaped) character of a class; the class must go on after it.
fn class_char(p: &[u8], mut i: usize) -> Result<usize, ()> {
    match p.get(i) {
        None | Some(b'-') | Some(b']') => return Err(()),
        Some(b'\\') => {
            i += 1;
            if i >= p.len() {
                return Err(());
            }
        }
        _ => {}
    }
    let (_, n) = first_char(&p[i..]).ok_or(())?;
    i += n;
    if i >= p.len() {
        return Err(());
    }
    Ok(i)
}

/// `Pattern.compile`: which kind of match, and for regexps the Go expression translated.
fn compile(pattern: &[u8]) -> Result<Kind, String> {
    let text = go_lossy(pattern);
    let mut chars = text.chars().peekable();
    // text/scanner drops a byte-order mark at the start of its input.
    if chars.peek() == Some(&'\u{FEFF}') {
        chars.next();
    }
    #[derive(PartialEq)]
    enum T {
        Exact,
        Prefix,
        Suffix,
        Regexp,
    }
    let mut re = String::from("^");
    let mut kind = T::Exact;
    let mut i = 0;
    while let Some(ch) = chars.next() {
        match ch {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                if chars.peek() == Some(&'/') {
                    chars.next();
                }
                if chars.peek().is_none() {
                    if kind == T::Exact {
                        kind = T::Prefix;
                    } else {
                        re.push_str(".*");
                        kind = T::Regexp;
                    }
                } else {
                    re.push_str("(.*/)?");
                    kind = T::Regexp;
                }
                if i == 0 {
                    kind = T::Suffix;
                }
            }
            '*' => {
                re.push_str("[^/]*");
                kind = T::Regexp;
            }
            '?' => {
                re.push_str("[^/]");
                kind = T::Regexp;
            }
            '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' => {
                re.push('\\');
                re.push(ch);
            }
            '\\' => match chars.next() {
                Some(next) => {
                    re.push('\\');
                    re.push(next);
                    kind = T::Regexp;
                }
                None => re.push('\\'),
            },
            '[' | ']' => {
                re.push(ch);
                kind = T::Regexp;
            }
            _ => re.push(ch),
        }
        i += 1;
    }
    Ok(match kind {
        T::Exact => Kind::Exact,
        T::Prefix => Kind::Prefix,
        T::Suffix => Kind::Suffix,
        T::Regexp => {
            re.push('$');
            let rust = translate(&re)?;
            Kind::Regex(
                regex::RegexBuilder::new(&rust)
                    .build()
                    .map_err(|e| format!("cannot compile {re:?}: {e}"))?,
            )
        }
    })
}

/// Go `regexp/syntax` text → the same language in Rust `regex` syntax. Outside classes the
/// two agree except Perl classes (ASCII in Go), `\Q…\E` and octal escapes; inside classes Go
/// has no nesting or set operators, so every class item is written as `\x{…}` code points,
/// named classes and negated Perl classes as nested classes.
pub fn translate(go: &str) -> Result<String, String> {
    let s: Vec<char> = go.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            '\\' => {
                let c = *s.get(i + 1).ok_or("trailing backslash")?;
                match c {
                    'd' | 'D' | 's' | 'S' | 'w' | 'W' | 'b' | 'B' => {
                        out.push_str(&format!("(?-u:\\{c})"));
                        i += 2;
                    }
                    'Q' => {
                        let start = i + 2;
                        let mut end = start;
                        while end < s.len() && !(s[end] == '\\' && s.get(end + 1) == Some(&'E')) {
                            end += 1;
                        }
                        let lit: String = s[start..end].iter().collect();
                        out.push_str(&regex::escape(&lit));
                        i = (end + 2).min(s.len());
                    }
                    'p' | 'P' | 'A' | 'z' => {
                        out.push('\\');
                        out.push(c);
                        i += 2;
                    }
                    _ => {
                        let (r, next) = escape(&s, i)?;
                        out.push_str(&format!("\\x{{{:X}}}", r as u32));
                        i = next;
                    }
                }
            }
            '[' => {
                let (class, next) = class(&s, i)?;
                out.push_str(&class);
                i = next;
            }
            ']' => {
                out.push_str("\\]");
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Go's `parseEscape` for a single character at `s[i] == '\\'`: octal, `\x`, C escapes and
/// escaped punctuation. Returns the character and the index after it.
fn escape(s: &[char], i: usize) -> Result<(char, usize), String> {
    let c = *s.get(i + 1).ok_or("trailing backslash")?;
    let mut j = i + 2;
    let simple = match c {
        'a' => Some('\x07'),
        'f' => Some('\x0C'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        'v' => Some('\x0B'),
        _ => None,
    };
    if let Some(r) = simple {
        return Ok((r, j));
    }
    let octal = |d: Option<&char>| d.is_some_and(|d| d.is_digit(8));
    // Octal: `\0` and up to two more digits; `\1`–`\7` only with a second digit (a lone
    // one would be a back-reference, which Go refuses).
    if c == '0' || (('1'..='7').contains(&c) && octal(s.get(j))) {
        let mut v = c.to_digit(8).unwrap_or(0);
        for _ in 1..3 {
            if !octal(s.get(j)) {
                break;
            }
            v = v * 8 + s[j].to_digit(8).unwrap_or(0);
            j += 1;
        }
        return char::from_u32(v)
            .map(|r| (r, j))
            .ok_or_else(|| "bad escape".into());
    }
    if c == 'x' {
        let (digits, next) = if s.get(j) == Some(&'{') {
            let end = s[j..].iter().position(|d| *d == '}').ok_or("bad \\x{}")? + j;
            (s[j + 1..end].iter().collect::<String>(), end + 1)
        } else {
            (s.get(j..j + 2).ok_or("bad \\x")?.iter().collect(), j + 2)
        };
        let v = u32::from_str_radix(&digits, 16).map_err(|_| "bad \\x escape")?;
        return char::from_u32(v)
            .map(|r| (r, next))
            .ok_or_else(|| "bad \\x".into());
    }
    if c.is_ascii() && !c.is_ascii_alphanumeric() {
        return Ok((c, j));
    }
    Err(format!("invalid escape sequence: \\{c}"))
}

/// One Go character class starting at `s[i] == '['`, as a Rust class.
fn class(s: &[char], i: usize) -> Result<(String, usize), String> {
    let mut j = i + 1;
    let mut out = String::from("[");
    if s.get(j) == Some(&'^') {
        out.push('^');
        j += 1;
    }
    let mut first = true;
    loop {
        let c = *s.get(j).ok_or("missing closing ]")?;
        if c == ']' && !first {
            out.push(']');
            return Ok((out, j + 1));
        }
        first = false;
        if c == '['
            && s.get(j + 1) == Some(&':')
            && let Some(end) =
                (j + 2..s.len().saturating_sub(1)).find(|&k| s[k] == ':' && s[k + 1] == ']')
        {
            let name: String = s[j + 2..end].iter().collect();
            const NAMES: [&str; 14] = [
                "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print",
                "punct", "space", "upper", "word", "xdigit",
            ];
            let bare = name.strip_prefix('^').unwrap_or(&name);
            if !NAMES.contains(&bare) {
                return Err(format!("invalid character class range: [:{name}:]"));
            }
            out.push_str(&format!("[[:{name}:]]"));
            j = end + 2;
            continue;
        }
        if c == '\\' {
            let perl = match s.get(j + 1) {
                Some('d') => Some("0-9"),
                Some('D') => Some("[^0-9]"),
                Some('s') => Some("\\t\\n\\x0C\\r "),
                Some('S') => Some("[^\\t\\n\\x0C\\r ]"),
                Some('w') => Some("0-9A-Za-z_"),
                Some('W') => Some("[^0-9A-Za-z_]"),
                _ => None,
            };
            if let Some(p) = perl {
                out.push_str(p);
                j += 2;
                continue;
            }
            if let Some('p' | 'P') = s.get(j + 1) {
                let end = if s.get(j + 2) == Some(&'{') {
                    s[j..].iter().position(|d| *d == '}').ok_or("bad \\p{}")? + j + 1
                } else {
                    j + 3
                };
                out.extend(s.get(j..end).ok_or("bad \\p")?);
                j = end;
                continue;
            }
        }
        let (lo, next) = class_item(s, j)?;
        j = next;
        let mut hi = lo;
        if s.get(j) == Some(&'-') && s.get(j + 1).is_some_and(|c| *c != ']') {
            let (h, next) = class_item(s, j + 1)?;
            if h < lo {
                return Err("invalid character class range".into());
            }
            hi = h;
            j = next;
        }
        out.push_str(&format!("\\x{{{:X}}}-\\x{{{:X}}}", lo as u32, hi as u32));
    }
}

fn class_item(s: &[char], j: usize) -> Result<(char, usize), String> {
    match s.get(j) {
        None => Err("missing closing ]".into()),
        Some('\\') => escape(s, j),
        Some(c) => Ok((*c, j + 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pm(patterns: &[&str]) -> PatternMatcher {
        let p: Vec<Vec<u8>> = patterns.iter().map(|p| p.as_bytes().to_vec()).collect();
        PatternMatcher::new(&p).expect("patterns")
    }

    /// moby/patternmatcher's TestMatches table, checked through both entry points.
    #[test]
    fn upstream_table() {
        let single: &[(&str, &str, bool)] = &[
            ("**", "file", true),
            ("**", "file/", true),
            ("**/", "file", true),
            ("**/", "file/", true),
            ("**", "/", true),
            ("**/", "/", true),
            ("**", "dir/file", true),
            ("**/", "dir/file", true),
            ("**", "dir/file/", true),
            ("**/", "dir/file/", true),
            ("**/**", "dir/file", true),
            ("**/**", "dir/file/", true),
            ("dir/**", "dir/file", true),
            ("dir/**", "dir/file/", true),
            ("dir/**", "dir/dir2/file", true),
            ("dir/**", "dir/dir2/file/", true),
            ("**/dir", "dir", true),
            ("**/dir", "dir/file", true),
            ("**/dir2/*", "dir/dir2/file", true),
            ("**/dir2/*", "dir/dir2/file/", true),
            ("**/dir2/**", "dir/dir2/dir3/file", true),
            ("**/dir2/**", "dir/dir2/dir3/file/", true),
            ("**file", "file", true),
            ("**file", "dir/file", true),
            ("**/file", "dir/file", true),
            ("**file", "dir/dir/file", true),
            ("**/file", "dir/dir/file", true),
            ("**/file*", "dir/dir/file", true),
            ("**/file*", "dir/dir/file.txt", true),
            ("**/file*txt", "dir/dir/file.txt", true),
            ("**/file*.txt", "dir/dir/file.txt", true),
            ("**/file*.txt*", "dir/dir/file.txt", true),
            ("**/**/*.txt", "dir/dir/file.txt", true),
            ("**/**/*.txt2", "dir/dir/file.txt", false),
            ("**/*.txt", "file.txt", true),
            ("**/**/*.txt", "file.txt", true),
            ("a**/*.txt", "a/file.txt", true),
            ("a**/*.txt", "a/dir/file.txt", true),
            ("a**/*.txt", "a/dir/dir/file.txt", true),
            ("a/*.txt", "a/dir/file.txt", false),
            ("a/*.txt", "a/file.txt", true),
            ("a/*.txt**", "a/file.txt", true),
            ("a[b-d]e", "ae", false),
            ("a[b-d]e", "ace", true),
            ("a[b-d]e", "aae", false),
            ("a[^b-d]e", "aze", true),
            (".*", ".foo", true),
            (".*", "foo", false),
            ("abc.def", "abcdef", false),
            ("abc.def", "abc.def", true),
            ("abc.def", "abcZdef", false),
            ("abc?def", "abcZdef", true),
            ("abc?def", "abcdef", false),
            ("a\\\\", "a\\", true),
            ("**/foo/bar", "foo/bar", true),
            ("**/foo/bar", "dir/foo/bar", true),
            ("**/foo/bar", "dir/dir2/foo/bar", true),
            ("abc/**", "abc", false),
            ("abc/**", "abc/def", true),
            ("abc/**", "abc/def/ghi", true),
            ("**/.foo", ".foo", true),
            ("**/.foo", "bar.foo", false),
            ("a(b)c/def", "a(b)c/def", true),
            ("a(b)c/def", "a(b)c/xyz", false),
            ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
            (
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                true,
            ),
            (
                "dist/*.whl",
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                true,
            ),
            ("a\\*b", "a*b", true),
        ];
        for (pattern, text, pass) in single {
            let m = pm(&[pattern]);
            assert_eq!(
                m.matches_or_parent_matches(text.as_bytes()),
                *pass,
                "{pattern:?} {text:?}"
            );
            assert_eq!(
                m.matches_using_parent(text.as_bytes(), None).0,
                *pass,
                "{pattern:?} {text:?} (no parent info)"
            );
        }
        let multi: &[(&[&str], &str, bool)] = &[
            (&["**", "!util/docker/web"], "util/docker/web/foo", false),
            (
                &["**", "!util/docker/web", "util/docker/web/foo"],
                "util/docker/web/foo",
                true,
            ),
            (
                &["**", "!dist/*.whl"],
                "dist/proxy.py-2.4.0rc3-any.whl",
                false,
            ),
            (&["docs", "!docs/README.md"], "docs/README.md", false),
            (&["docs/*", "!docs/README.md"], "docs/README.md", false),
            (&["*.go", "!fileutils.go"], "fileutils.go", false),
            (&["!fileutils.go", "*.go"], "fileutils.go", true),
        ];
        for (patterns, text, pass) in multi {
            assert_eq!(
                pm(patterns).matches_or_parent_matches(text.as_bytes()),
                *pass,
                "{patterns:?} {text:?}"
            );
        }
    }

    #[test]
    fn upstream_read_all() {
        let text = b"test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n!\n! ";
        let got: Vec<String> = read_all(text)
            .into_iter()
            .map(|p| String::from_utf8(p).expect("utf8"))
            .collect();
        assert_eq!(
            got,
            [
                "test1",
                "test2",
                "a/file/here",
                "lastfile",
                "!inverted/abs/path",
                "!",
                "!"
            ]
        );
    }

    #[test]
    fn docker_quirks() {
        // A BOM only on the first line; `#` only in column one.
        let p = read_all(b"\xEF\xBB\xBFa\n  #x\n#y\n");
        assert_eq!(p, vec![b"a".to_vec(), b"#x".to_vec()]);
        assert!(PatternMatcher::new(&[b"!".to_vec()]).is_err());
        assert!(PatternMatcher::new(&[b"[".to_vec()]).is_err());
        assert!(PatternMatcher::new(&[b"a\\".to_vec()]).is_err());
        assert!(PatternMatcher::new(&[b"[]a]".to_vec()]).is_err());
        // Braces are literal; [!x] holds '!' and 'x'; [^x] is negated.
        assert!(pm(&["{a,b}"]).matches_or_parent_matches(b"{a,b}"));
        assert!(!pm(&["{a,b}"]).matches_or_parent_matches(b"a"));
        assert!(pm(&["[!x]"]).matches_or_parent_matches(b"!"));
        assert!(!pm(&["[!x]"]).matches_or_parent_matches(b"y"));
        assert!(pm(&["[^x]"]).matches_or_parent_matches(b"y"));
        // `**.log` matches by suffix anywhere.
        assert!(pm(&["**.log"]).matches_or_parent_matches(b"a/b/c.log"));
        // `\w` is Go's ASCII word class once the pattern became a regexp.
        assert!(pm(&["a\\w"]).matches_or_parent_matches(b"ab"));
        assert!(!pm(&["a\\w"]).matches_or_parent_matches("aé".as_bytes()));
        // `*` inside a class ends the class early in Go's reading: "[a*]" is "[a[^/]" "*" "]".
        assert!(pm(&["[a*]"]).matches_or_parent_matches(b"a]"));
        // Non-UTF-8 names: an invalid byte is one character.
        assert!(pm(&["x?y"]).matches_or_parent_matches(b"x\xFFy"));
    }

    #[test]
    fn go_clean() {
        for (i, o) in [
            ("", "."),
            ("a/../..", ".."),
            ("/../a", "/a"),
            ("./a//b/", "a/b"),
            ("/", "/"),
            ("../a.txt", "../a.txt"),
        ] {
            assert_eq!(clean(i.as_bytes()), o.as_bytes(), "{i}");
        }
    }
}
