//! Checks on text that people and clients send, run before anything is written.
//!
//! Lengths count characters (Unicode scalar values), not bytes, so an Arabic or Kurdish text has
//! the same room as a Latin one.

use crate::{Result, StoreError};

/// The actor name the audit log records for citizens' appeals; no user may take it.
pub(crate) const PUBLIC_ACTOR: &str = "public";

/// Whether line breaks and tabs are allowed (other control characters never are).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lines {
    /// One line.
    Single,
    /// Free text with line breaks and tabs.
    Multi,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> StoreError {
    StoreError::Invalid { field, reason: reason.into() }
}

/// Checks that `value` has `min..=max` characters and no control characters.
pub(crate) fn text(field: &'static str, value: &str, min: usize, max: usize, lines: Lines) -> Result<()> {
    let len = value.chars().count();
    if len < min {
        return Err(invalid(
            field,
            if len == 0 { "must not be empty".into() } else { format!("must be at least {min} characters, not {len}") },
        ));
    }
    if len > max {
        return Err(invalid(field, format!("must be at most {max} characters, not {len}")));
    }
    let allowed = |c: char| lines == Lines::Multi && matches!(c, '\n' | '\r' | '\t');
    if value.chars().any(|c| c.is_control() && !allowed(c)) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// A user name: 1 to 64 of `a-z 0-9 . _ -`, and not the reserved `public`.
pub(crate) fn user_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 64 {
        return Err(invalid("name", format!("must be 1 to 64 characters, not {}", name.chars().count())));
    }
    if let Some(c) = name.chars().find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '-')) {
        return Err(invalid(
            "name",
            format!("{c:?} is not allowed: use lower-case letters a-z, digits, '.', '_' and '-'"),
        ));
    }
    if name == PUBLIC_ACTOR {
        return Err(invalid("name", "\"public\" is reserved: the audit log records citizens' appeals under it"));
    }
    Ok(())
}

/// A password: at least 12 characters (a passphrase of a few words is fine), at most 1024.
pub(crate) fn password(password: &str) -> Result<()> {
    let len = password.chars().count();
    if len < 12 {
        return Err(invalid("password", format!("must be at least 12 characters, not {len}")));
    }
    if len > 1024 {
        return Err(invalid("password", format!("must be at most 1024 characters, not {len}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(r: Result<()>) -> String {
        match r {
            Err(StoreError::Invalid { reason, .. }) => reason,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn text_counts_characters_and_refuses_control_characters() {
        assert!(text("reason", "حجب غير مبرر", 10, 12, Lines::Single).is_ok());
        assert_eq!(reason(text("site", "", 1, 253, Lines::Single)), "must not be empty");
        assert_eq!(reason(text("reason", "too short", 10, 20, Lines::Multi)), "must be at least 10 characters, not 9");
        assert_eq!(reason(text("reason", "abc", 1, 2, Lines::Multi)), "must be at most 2 characters, not 3");
        assert!(text("reason", "line one\nline two\tx", 1, 100, Lines::Multi).is_ok());
        assert!(text("site", "a\nb", 1, 100, Lines::Single).is_err());
        assert!(text("reason", "bell\u{7}", 1, 100, Lines::Multi).is_err());
    }

    #[test]
    fn user_names() {
        for good in ["alice", "a", "ops.team_2-b", &"x".repeat(64)] {
            assert!(user_name(good).is_ok(), "{good}");
        }
        for bad in ["", "Alice", "al ice", "ali\u{e7}e", "a/b", &"x".repeat(65), "public"] {
            assert!(matches!(user_name(bad), Err(StoreError::Invalid { field: "name", .. })), "{bad}");
        }
    }

    #[test]
    fn passwords() {
        assert!(password("twelve chars").is_ok());
        assert_eq!(reason(password("eleven char")), "must be at least 12 characters, not 11");
        assert!(password(&"p".repeat(1025)).is_err());
    }
}
