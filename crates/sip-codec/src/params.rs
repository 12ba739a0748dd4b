//! `;name=value` parameter lists, as they follow a URI, a Via sent-by, a name-addr or a media type
//! (RFC 3261 §19.1.1 `uri-parameters`, §25.1 `generic-param`).
//!
//! [`Params`] wraps the raw bytes and parses lazily: lookups walk the list without allocating.

use crate::text::{eq_ignore_case, is_lws, quoted_end, trim};

/// A borrowed parameter list. The raw slice is empty or starts with `;`.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Params<'a> {
    raw: &'a [u8],
}

/// One parameter: a name and an optional value (`;lr` has none, `;transport=tcp` has one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param<'a> {
    /// The parameter name as written (compare it case-insensitively).
    pub name: &'a [u8],
    /// The value as written, quotes included if it was a quoted string.
    pub value: Option<&'a [u8]>,
}

impl<'a> Param<'a> {
    /// The value without surrounding double quotes (escapes inside are left as written).
    pub fn value_unquoted(&self) -> Option<&'a [u8]> {
        self.value.map(unquote)
    }
}

/// Strips one pair of surrounding double quotes, if present.
pub fn unquote(v: &[u8]) -> &[u8] {
    if v.len() >= 2 && v[0] == b'"' && v[v.len() - 1] == b'"' {
        &v[1..v.len() - 1]
    } else {
        v
    }
}

impl<'a> Params<'a> {
    /// Wraps a raw parameter list. `raw` must be empty or start with `;` (leading LWS allowed).
    pub fn new(raw: &'a [u8]) -> Self {
        Self { raw }
    }

    /// The raw bytes, starting at the first `;` (or empty).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }

    /// Is the list empty?
    pub fn is_empty(&self) -> bool {
        trim(self.raw).is_empty()
    }

    /// Looks a parameter up by name, case-insensitively. `Some(None)` means present without value.
    pub fn get(&self, name: &[u8]) -> Option<Option<&'a [u8]>> {
        self.iter()
            .find(|p| eq_ignore_case(p.name, name))
            .map(|p| p.value)
    }

    /// Like [`get`](Self::get), with quotes stripped from the value.
    pub fn get_unquoted(&self, name: &[u8]) -> Option<Option<&'a [u8]>> {
        self.get(name).map(|v| v.map(unquote))
    }

    /// Is a parameter with this name present (with or without value)?
    pub fn contains(&self, name: &[u8]) -> bool {
        self.get(name).is_some()
    }

    /// Iterates the parameters in order.
    pub fn iter(&self) -> ParamIter<'a> {
        ParamIter { rest: self.raw }
    }

    /// Checks the list against `*( SEMI generic-param )`: every parameter has a non-empty name
    /// made of `name_ok` bytes, values are non-empty, quoted strings are closed.
    pub fn validate(&self, name_ok: fn(u8) -> bool) -> Result<(), &'static str> {
        let mut rest = self.raw;
        loop {
            rest = skip_lws(rest);
            if rest.is_empty() {
                return Ok(());
            }
            if rest[0] != b';' {
                return Err("expected ';' before a parameter");
            }
            let (item, next) = split_param(&rest[1..]).ok_or("unterminated quoted string")?;
            let (name, value) = split_name_value(item);
            if name.is_empty() {
                return Err("empty parameter name");
            }
            if !name.iter().all(|&c| name_ok(c)) {
                return Err("invalid character in a parameter name");
            }
            if let Some(v) = value {
                if v.is_empty() {
                    return Err("empty parameter value");
                }
                if v[0] == b'"' && quoted_end(v) != Some(v.len()) {
                    return Err("bad quoted parameter value");
                }
            }
            rest = next;
        }
    }
}

impl std::fmt::Debug for Params<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.raw))
    }
}

impl<'a> IntoIterator for Params<'a> {
    type Item = Param<'a>;
    type IntoIter = ParamIter<'a>;
    fn into_iter(self) -> ParamIter<'a> {
        self.iter()
    }
}

/// Iterator over a [`Params`] list.
#[derive(Debug, Clone)]
pub struct ParamIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for ParamIter<'a> {
    type Item = Param<'a>;
    fn next(&mut self) -> Option<Param<'a>> {
        loop {
            let rest = skip_lws(self.rest);
            let body = rest.strip_prefix(b";")?;
            let (item, next) = split_param(body).unwrap_or((body, &[]));
            self.rest = next;
            let (name, value) = split_name_value(item);
            if name.is_empty() && value.is_none() {
                continue; // ";;" — tolerated by the iterator, rejected by validate()
            }
            return Some(Param { name, value });
        }
    }
}

fn skip_lws(s: &[u8]) -> &[u8] {
    let n = s.iter().position(|&c| !is_lws(c)).unwrap_or(s.len());
    &s[n..]
}

/// Splits at the next `;` outside quotes. Returns `(item, rest-starting-at-';')`.
fn split_param(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'"' => i += quoted_end(&s[i..])?,
            b';' => return Some((&s[..i], &s[i..])),
            _ => i += 1,
        }
    }
    Some((s, &[]))
}

fn split_name_value(item: &[u8]) -> (&[u8], Option<&[u8]>) {
    match memchr::memchr(b'=', item) {
        Some(eq) => (trim(&item[..eq]), Some(trim(&item[eq + 1..]))),
        None => (trim(item), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::is_token;

    #[test]
    fn lookups_are_case_insensitive_and_keep_order() {
        let p = Params::new(b";Branch=z9hG4bK1 ; rport ;received = 10.0.0.1;x=\"a;b\"");
        assert_eq!(p.get(b"branch"), Some(Some(&b"z9hG4bK1"[..])));
        assert_eq!(p.get(b"RPORT"), Some(None));
        assert_eq!(p.get(b"received"), Some(Some(&b"10.0.0.1"[..])));
        assert_eq!(p.get_unquoted(b"x"), Some(Some(&b"a;b"[..])));
        assert_eq!(p.get(b"maddr"), None);
        let names: Vec<&[u8]> = p.iter().map(|p| p.name).collect();
        assert_eq!(names, vec![&b"Branch"[..], b"rport", b"received", b"x"]);
        assert!(p.validate(is_token).is_ok());
    }

    #[test]
    fn validate_rejects_empty_parts() {
        assert!(Params::new(b";;").validate(is_token).is_err());
        assert!(Params::new(b";a=").validate(is_token).is_err());
        assert!(Params::new(b";a=\"open").validate(is_token).is_err());
        assert!(Params::new(b"").validate(is_token).is_ok());
    }
}
