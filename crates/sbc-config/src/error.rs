//! [`ConfigError`] and [`ConfigErrors`]: every problem found in a configuration, each as one
//! `key.path: problem (got value)` line, including the config crate's own parse errors.

use std::fmt;

/// One problem in the configuration: where (`trunk[1].outbound.uri`) and what.
///
/// Displays as `key.path: problem`; the problem ends with `(got value)` when quoting the value
/// helps, and never quotes a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {problem}", if path.is_empty() { "(top level)" } else { path })]
pub struct ConfigError {
    /// Key path as written in the file: `sip.listen[0]`, `trunk[2].inbound.digest.users[0]`.
    /// For problems with the file itself (unreadable, not TOML) it is the file's path.
    pub path: String,
    /// What is wrong, e.g. `not a SIP URI (got "http://x")`.
    pub problem: String,
}

impl ConfigError {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            problem: problem.into(),
        }
    }
}

/// All problems found in one configuration, in file order. Never empty.
///
/// Displays one [`ConfigError`] per line, without a trailing newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    errors: Vec<ConfigError>,
}

impl ConfigErrors {
    /// Wraps a non-empty list.
    ///
    /// # Panics
    /// If `errors` is empty: "no errors" is not an error (a bug in the caller).
    #[must_use]
    pub fn new(errors: Vec<ConfigError>) -> Self {
        assert!(!errors.is_empty(), "ConfigErrors needs at least one error");
        Self { errors }
    }

    /// The problems, in file order.
    #[must_use]
    pub fn errors(&self) -> &[ConfigError] {
        &self.errors
    }

    /// How many problems there are (at least one).
    #[must_use]
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Always `false`; present because `len` is.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// Iterates over the problems.
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.errors.iter()
    }

    /// The problems as a vector.
    #[must_use]
    pub fn into_vec(self) -> Vec<ConfigError> {
        self.errors
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        Self { errors: vec![e] }
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.iter()
    }
}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.into_iter()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Joins a key path and a sub-path: `("trunk", "[0].name")` → `trunk[0].name`,
/// `("trunk[0]", "name")` → `trunk[0].name`, `("", "sip")` → `sip`.
pub(crate) fn join_path(prefix: &str, rest: &str) -> String {
    match (prefix.is_empty(), rest.is_empty()) {
        (true, _) => rest.to_owned(),
        (false, true) => prefix.to_owned(),
        (false, false) if rest.starts_with('[') => format!("{prefix}{rest}"),
        (false, false) => format!("{prefix}.{rest}"),
    }
}

/// The config crate writes `trunk[0]inbound.allow`; make it `trunk[0].inbound.allow`.
fn normalize_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    let mut after_bracket = false;
    for c in key.chars() {
        if after_bracket && c != '.' && c != '[' {
            out.push('.');
        }
        after_bracket = c == ']';
        out.push(c);
    }
    out
}

/// Whether a value at `path` is a secret, so errors must not quote it.
pub(crate) fn is_secret_path(path: &str) -> bool {
    path.ends_with("password") || path.ends_with("header.value")
}

/// Turns an error of the config crate into a `key.path: problem` line. `prefix` is the path of
/// the value that was being deserialized (empty for the whole file); `file` names the
/// configuration file for errors that have no key.
pub(crate) fn from_config_crate(e: config::ConfigError, prefix: &str, file: &str) -> ConfigError {
    match e {
        config::ConfigError::NotFound(key) => ConfigError::new(
            join_path(prefix, &normalize_key(&key)),
            "required key is missing",
        ),
        config::ConfigError::Type {
            unexpected,
            expected,
            key,
            ..
        } => {
            let path = join_path(prefix, &normalize_key(key.as_deref().unwrap_or("")));
            let got = got_value(&unexpected.to_string());
            ConfigError::new(&path, type_problem(&path, expected, &got))
        }
        config::ConfigError::At { error, key, .. } => {
            let path = join_path(prefix, &normalize_key(key.as_deref().unwrap_or("")));
            from_config_crate(*error, &path, file)
        }
        config::ConfigError::Message(message) => from_serde_message(&message, prefix),
        config::ConfigError::FileParse { cause, .. } => {
            ConfigError::new(file, condense_toml_error(&cause.to_string()))
        }
        other => {
            let path = if prefix.is_empty() { file } else { prefix };
            ConfigError::new(path, other.to_string())
        }
    }
}

/// `expected an integer (got "fast")`, without the value when `path` holds a secret.
fn type_problem(path: &str, expected: &str, got: &str) -> String {
    let expected = describe_expected(expected);
    if is_secret_path(path) {
        format!("expected {expected}")
    } else {
        format!("expected {expected} (got {got})")
    }
}

/// Reads serde's messages (`unknown field …`, `invalid type: …, expected …`), which the config
/// crate passes on as text.
fn from_serde_message(message: &str, path: &str) -> ConfigError {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some((field, rest)) = rest.split_once('`') {
            let expected = rest
                .strip_prefix(", expected one of ")
                .or_else(|| rest.strip_prefix(", expected "))
                .map(|list| list.replace('`', ""));
            let problem = match expected {
                Some(list) => format!("unknown key (expected {list})"),
                None => "unknown key".to_owned(),
            };
            return ConfigError::new(join_path(path, field), problem);
        }
    }
    for kind in ["invalid type: ", "invalid value: "] {
        if let Some((got, expected)) = message
            .strip_prefix(kind)
            .and_then(|rest| rest.split_once(", expected "))
        {
            return ConfigError::new(path, type_problem(path, expected, &got_value(got)));
        }
    }
    ConfigError::new(path, message)
}

/// serde's and config's description of a value (`string "x"`, ``integer `5` ``, `sequence`) as
/// it is written in TOML (`"x"`, `5`, `a list`).
fn got_value(unexpected: &str) -> String {
    if let Some(s) = unexpected.strip_prefix("string ") {
        return s.to_owned();
    }
    if let Some((_, rest)) = unexpected.split_once('`') {
        if let Some((value, _)) = rest.split_once('`') {
            return value.to_owned();
        }
    }
    match unexpected {
        "sequence" => "a list".to_owned(),
        "map" => "a table".to_owned(),
        "unit value" | "unit" => "nothing".to_owned(),
        other => other.to_owned(),
    }
}

fn describe_expected(expected: &str) -> String {
    if expected.starts_with("struct ") || expected == "a map" {
        "a table".to_owned()
    } else if expected == "a sequence" {
        "a list".to_owned()
    } else if expected.contains("unsigned") {
        "a non-negative integer".to_owned()
    } else {
        expected.to_owned()
    }
}

/// The toml crate's error is several lines with a source excerpt; keep the position and the
/// message: `TOML parse error at line 2, column 8: string values must be quoted`.
fn condense_toml_error(message: &str) -> String {
    let mut lines = message
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !l.trim_start().starts_with('|') && !is_excerpt_line(l));
    let head = lines.next().unwrap_or("not valid TOML").to_owned();
    let rest: Vec<&str> = lines.collect();
    if rest.is_empty() {
        head
    } else {
        format!("{head}: {}", rest.join("; "))
    }
}

/// `12 | key = value` lines of the toml crate's excerpt.
fn is_excerpt_line(line: &str) -> bool {
    line.trim_start()
        .split_once(" |")
        .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_one_line_per_error() {
        let errors = ConfigErrors::new(vec![
            ConfigError::new("trunk[1].outbound.uri", "not a SIP URI (got \"http://x\")"),
            ConfigError::new("route[0].to[1]", "unknown trunk \"backup\""),
        ]);
        assert_eq!(
            errors.to_string(),
            "trunk[1].outbound.uri: not a SIP URI (got \"http://x\")\nroute[0].to[1]: unknown trunk \"backup\""
        );
        assert_eq!(errors.len(), 2);
    }

    #[test]
    fn paths_join_and_normalize() {
        assert_eq!(join_path("", "sip"), "sip");
        assert_eq!(join_path("trunk", "[0].name"), "trunk[0].name");
        assert_eq!(join_path("trunk[0]", "name"), "trunk[0].name");
        assert_eq!(join_path("trunk[0]", ""), "trunk[0]");
        assert_eq!(
            normalize_key("trunk[0]inbound.allow"),
            "trunk[0].inbound.allow"
        );
        assert_eq!(
            normalize_key("trunk[0]inbound.digest.users[1]"),
            "trunk[0].inbound.digest.users[1]"
        );
        assert_eq!(normalize_key("a[0][1]b"), "a[0][1].b");
        assert_eq!(normalize_key("sip.listen"), "sip.listen");
    }

    #[test]
    fn serde_messages_become_key_paths() {
        let e = from_serde_message(
            "unknown field `prefx`, expected one of `allow`, `domain`",
            "trunk[0].inbound",
        );
        assert_eq!(
            e.to_string(),
            "trunk[0].inbound.prefx: unknown key (expected allow, domain)"
        );
        let e = from_serde_message("unknown field `x`, expected `listen`", "admin");
        assert_eq!(e.to_string(), "admin.x: unknown key (expected listen)");
        let e = from_serde_message("unknown field `x`, there are no fields", "a");
        assert_eq!(e.to_string(), "a.x: unknown key");
        let e = from_serde_message(
            "invalid type: string \"b\", expected a sequence",
            "route[0].to",
        );
        assert_eq!(e.to_string(), "route[0].to: expected a list (got \"b\")");
        let e = from_serde_message(
            "invalid type: integer `5`, expected struct RawHeader",
            "t.header",
        );
        assert_eq!(e.to_string(), "t.header: expected a table (got 5)");
        let e = from_serde_message(
            "invalid type: sequence, expected a string",
            "t.auth.password",
        );
        assert_eq!(e.to_string(), "t.auth.password: expected a string");
    }

    #[test]
    fn toml_errors_fit_on_one_line() {
        let msg = "TOML parse error at line 2, column 8\n  |\n2 | listen=\n  |        ^\nstring values must be quoted, expected literal string\n";
        assert_eq!(
            condense_toml_error(msg),
            "TOML parse error at line 2, column 8: string values must be quoted, expected literal string"
        );
    }
}
