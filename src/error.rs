//! The user-error type: the bottom layer every stage may use.
//!
//! Owns [`UserError`] (an error the user can fix, whose message names the input
//! and the fix), its constructor [`user`] and macro [`bail_user!`](crate::bail_user),
//! and [`error_chain`] for details inside other messages. It must not name any
//! stage: which stage errors are the user's to fix, and the exit codes, are
//! [`crate::exit`]'s.
use std::fmt;

/// An error the user can fix: bad input, a missing service, a wrong flag.
/// The message names the input and the fix.
#[derive(Debug)]
pub struct UserError(pub String);

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UserError {}

/// Build an `anyhow::Error` that exits with code 1.
pub fn user(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UserError(msg.into()))
}

/// Return early with a [`UserError`].
#[macro_export]
macro_rules! bail_user {
    ($($arg:tt)*) => {
        return Err($crate::error::user(format!($($arg)*)))
    };
}

/// An error and its causes on one line, for details inside other messages.
/// A cause whose text the message already contains is not repeated.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let cs = c.to_string();
        if !s.contains(&cs) {
            s.push_str(": ");
            s.push_str(&cs);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrap(&'static str, Option<Box<dyn std::error::Error + 'static>>);

    impl fmt::Display for Wrap {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Wrap {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref()
        }
    }

    #[test]
    fn error_chain_joins_causes_and_skips_repeats() {
        let inner = Wrap("connection refused", None);
        let mid = Wrap("connect: connection refused", Some(Box::new(inner)));
        let top = Wrap("request failed", Some(Box::new(mid)));
        assert_eq!(
            error_chain(&top),
            "request failed: connect: connection refused"
        );
    }

    #[test]
    fn user_builds_a_user_error() {
        let e = user("bad flag");
        assert!(e.is::<UserError>());
        assert_eq!(e.to_string(), "bad flag");
    }
}
