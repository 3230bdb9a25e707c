/// Quotes `s` as an HCL string literal: escapes, and `${`/`%{` made literal so a value
/// from YAML can never become a Terraform expression.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' | '%' if chars.peek() == Some(&'{') => {
                out.push(c);
                out.push(c);
            }
            // Any other control character as HCL's \uNNNN: nothing raw in a .tf file.
            c if c.is_control() && (c as u32) <= 0xFFFF => {
                out.push_str(&format!("\\u{:04X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn escapes_interpolation_and_quotes() {
        assert_eq!(quote("plain"), "\"plain\"");
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(quote("${var.x} %{if}"), "\"$${var.x} %%{if}\"");
        assert_eq!(quote("$5 100%"), "\"$5 100%\"");
        assert_eq!(quote("a\u{1b}[31m\u{7}"), "\"a\\u001B[31m\\u0007\"");
    }
}
