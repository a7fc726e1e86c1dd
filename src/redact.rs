//! Credentials never printed: the one place that hides the password of a
//! URL's userinfo (`scheme://user:password@host`, or `user:password@host` as
//! `doctor --registry` takes it), and the values of secret-looking query
//! parameters (a registry's redirect to signed storage URLs:
//! `X-Amz-Signature=…`, `token=…`), in any text advisor prints — errors,
//! warnings, notes, check results and `-v` logs.
//!
//! Owns the rule, not the printing: `main_entry` and the [`Printer`]'s
//! stderr messages pass their text through [`redact`]; code that puts a URL
//! in data output (a table, JSON) calls it itself.
//!
//! [`Printer`]: crate::printer::Printer

/// What a hidden password prints as.
pub const HIDDEN: &str = "***";

/// `text` with the password of every URL's userinfo replaced by [`HIDDEN`]
/// (the user name stays, to say which account). A userinfo is the
/// `user:password` before an `@` that starts its word (or follows `://`) with
/// no `/` between: an `@` later in a path, or before a digest
/// (`name:tag@sha256:…`), is not one.
pub fn redact(text: &str) -> String {
    redact_query(&redact_userinfo(text))
}

/// The value of every query parameter whose name holds `signature`,
/// `credential`, `token`, `secret`, `password`, `sig` or `key` (any case)
/// replaced by [`HIDDEN`].
fn redact_query(text: &str) -> String {
    static SECRET: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r#"(?i)([?&][a-z0-9_.-]*(?:signature|credential|token|secret|password|sig|key)[a-z0-9_.-]*=)[^&\s"'`<>)\]]+"#,
        )
        .expect("a valid pattern")
    });
    SECRET
        .replace_all(text, format!("${{1}}{HIDDEN}"))
        .into_owned()
}

/// Passwords of URL userinfo, see [`redact`].
fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('@') {
        let (before, after) = (&rest[..at], &rest[at + 1..]);
        let word = before.rfind(is_separator).map_or(0, |i| i + 1);
        let start = before[word..].rfind("://").map_or(word, |i| word + i + 3);
        let userinfo = &before[start..];
        let is_digest = after.starts_with("sha256:") || after.starts_with("sha512:");
        match userinfo.split_once(':') {
            Some((user, pass))
                if !pass.is_empty()
                    && !userinfo.contains(['/', '?', '#'])
                    && !is_digest
                    && !after.is_empty()
                    && !after.starts_with(is_separator) =>
            {
                out.push_str(&before[..start]);
                out.push_str(user);
                out.push(':');
                out.push_str(HIDDEN);
            }
            _ => out.push_str(before),
        }
        out.push('@');
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Characters that end a word of printed text (a URL never holds them unescaped).
fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '"' | '\'' | '`' | '(' | ')' | '<' | '>' | '[' | ']' | ','
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_query_values_are_hidden() {
        assert_eq!(
            redact(
                "GET https://s3.example/b/o?X-Amz-Credential=AKIA%2F1&X-Amz-Date=2026&X-Amz-Signature=abc123 for r"
            ),
            "GET https://s3.example/b/o?X-Amz-Credential=***&X-Amz-Date=2026&X-Amz-Signature=*** for r"
        );
        assert_eq!(
            redact("(https://h/x?token=t0k&n=1)"),
            "(https://h/x?token=***&n=1)"
        );
        assert_eq!(
            redact("https://h/v2/?n=100&last=a"),
            "https://h/v2/?n=100&last=a"
        );
    }

    #[test]
    fn passwords_in_urls_are_hidden_user_names_kept() {
        assert_eq!(
            redact("https://user:s3cret@127.0.0.1:9/v2/ unreachable"),
            "https://user:***@127.0.0.1:9/v2/ unreachable"
        );
        assert_eq!(
            redact("stargz metrics at http://u:p%40ss@host:8234/metrics answered 500"),
            "stargz metrics at http://u:***@host:8234/metrics answered 500"
        );
        assert_eq!(redact("user:pass@registry:5000"), "user:***@registry:5000");
        assert_eq!(
            redact("(`a:b@h/x`, \"c:d@h\")"),
            "(`a:***@h/x`, \"c:***@h\")"
        );
    }

    #[test]
    fn text_without_credentials_is_unchanged() {
        for t in [
            "sha256:abc@ sha256:def",
            "image@sha256:0123",
            "127.0.0.1:5000/app:1@sha256:0123",
            "busybox:1.36@sha256:0123",
            "mail me@example.com",
            "http://host:80/path?x=a:b@c",
            "no at sign",
            "",
        ] {
            assert_eq!(redact(t), t);
        }
    }
}
