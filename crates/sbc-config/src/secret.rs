//! [`Secret`]: a string that never shows up in `Debug` output, logs or error messages.

use std::fmt;

use serde::Deserialize;

/// A password or shared key from the configuration.
///
/// `Debug` prints `Secret(<redacted>)`, and there is deliberately no `Display`: the value is
/// reached only through [`Secret::expose`], so every place that uses it is easy to find.
/// Comparison is constant-time in the length of the longer value, which is what digest and
/// header checks against attacker-chosen input need.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value itself. Never log it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the value is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Compares with `other` without stopping at the first differing byte, so the time taken
    /// does not tell an attacker how much of a guessed value was right.
    #[must_use]
    pub fn matches(&self, other: &[u8]) -> bool {
        let mine = self.0.as_bytes();
        let mut diff = mine.len() ^ other.len();
        for i in 0..mine.len().max(other.len()) {
            let a = mine.get(i).copied().unwrap_or(0);
            let b = other.get(i).copied().unwrap_or(0);
            diff |= usize::from(a ^ b);
        }
        diff == 0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Equal when the values are equal (used by the reload diff); constant-time as [`Secret::matches`].
impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.matches(other.0.as_bytes())
    }
}

impl Eq for Secret {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(format!("{:?}", Some(&s)), "Some(Secret(<redacted>))");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn matches_compares_whole_value() {
        let s = Secret::new("abc");
        assert!(s.matches(b"abc"));
        assert!(!s.matches(b"ab"));
        assert!(!s.matches(b"abcd"));
        assert!(!s.matches(b"abd"));
        assert!(!s.matches(b""));
        assert!(Secret::new("").matches(b""));
    }
}
