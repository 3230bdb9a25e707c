//! Text that came from elsewhere (a build's output, a container's log, a YAML value) made
//! safe to print: a terminal must show it, never obey it.

/// A value quoted in a message: every control character shown as its escape (`\n`,
/// `\u{1b}`), so a newline or a terminal sequence in a YAML value is seen, not obeyed.
pub fn shown(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().collect()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Drops ANSI escape sequences (colour codes such as Docker's `ESC[91m` around a build
/// step's stderr) and shows any other control character as `\u{..}`; tabs stay.
pub fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters… final byte in @..~; other escapes: ESC and one char.
            if chars.peek() == Some(&'[') {
                chars.next();
                for f in chars.by_ref() {
                    if ('@'..='~').contains(&f) {
                        break;
                    }
                }
            } else {
                chars.next();
            }
        } else if c.is_control() && c != '\t' {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// JSON for a terminal or a pipe: serde_json escapes only C0 controls, so C1 controls
/// (U+0080–U+009F: a lone CSI, U+009B, is read by terminals as ESC [) and the line and
/// paragraph separators from logs would go out raw. Escaping them keeps the JSON the same
/// value. (Only strings hold non-ASCII characters, so the whole text can be mapped.)
pub fn json_safe(json: String) -> String {
    if !json
        .chars()
        .any(|c| ('\u{80}'..='\u{9f}').contains(&c) || matches!(c, '\u{2028}' | '\u{2029}'))
    {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if ('\u{80}'..='\u{9f}').contains(&c) || matches!(c, '\u{2028}' | '\u{2029}') {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{json_safe, printable};

    #[test]
    fn json_goes_out_without_raw_c1_controls_and_means_the_same() {
        let v = serde_json::json!({"message": "a\u{9b}31mred\u{85}next\u{2028}é"});
        let out = json_safe(serde_json::to_string(&v).unwrap_or_default());
        assert!(out.is_ascii() || !out.chars().any(|c| ('\u{80}'..='\u{9f}').contains(&c)));
        assert!(out.contains("\\u009b") && out.contains("\\u2028") && out.contains('é'));
        let back: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        assert_eq!(back, v);
    }

    #[test]
    fn drops_escape_sequences_and_shows_other_controls() {
        assert_eq!(printable("\x1b[91mDEPRECATION\x1b[0m: x"), "DEPRECATION: x");
        assert_eq!(printable("a\x1b]0;title\x07b"), "a0;title\\u{7}b");
        assert_eq!(printable("tab\tok\r"), "tab\tok\\u{d}");
        assert_eq!(printable("plain é"), "plain é");
    }
}
