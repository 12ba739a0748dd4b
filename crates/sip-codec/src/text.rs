//! Byte classes and small scanners shared by every grammar in the crate (RFC 3261 §25.1).
//!
//! All functions work on borrowed bytes and never allocate.

/// `token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" )`
const TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        i += 1;
    }
    t
};

/// Is `c` a `token` character (RFC 3261 §25.1)?
#[inline]
pub(crate) fn is_token(c: u8) -> bool {
    TOKEN[c as usize]
}

/// Is `s` a non-empty `token`?
#[inline]
pub(crate) fn is_token_str(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&c| is_token(c))
}

/// Linear white space as it can appear inside a (possibly folded) header value.
#[inline]
pub(crate) fn is_lws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

/// Trims LWS (including folded line breaks) from both ends.
#[inline]
pub(crate) fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&c| !is_lws(c)).unwrap_or(s.len());
    let end = s.iter().rposition(|&c| !is_lws(c)).map_or(start, |e| e + 1);
    &s[start..end]
}

/// ASCII case-insensitive equality, as header names, parameter names and URI schemes compare.
#[inline]
pub(crate) fn eq_ignore_case(a: &[u8], b: &[u8]) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Parses an unsigned decimal without sign, overflow or empty input.
pub(crate) fn parse_u32(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 10 {
        // Leading zeros are legal ("0000000009"); allow them, but bound the work.
        let s = strip_leading_zeros(s)?;
        return parse_u32_digits(s);
    }
    parse_u32_digits(s)
}

/// Parses a port or a count: 1 to 5 ASCII digits, at most 65535 (RFC 3261 §25.1 `port`,
/// RFC 8866 `port`). Shared by URIs, Via sent-by and SDP.
pub(crate) fn parse_u16(s: &[u8]) -> Option<u16> {
    if s.len() > 5 {
        return None;
    }
    parse_u32_digits(s).and_then(|v| u16::try_from(v).ok())
}

fn strip_leading_zeros(s: &[u8]) -> Option<&[u8]> {
    if s.is_empty() {
        return None;
    }
    let first = s.iter().position(|&c| c != b'0').unwrap_or(s.len() - 1);
    Some(&s[first..])
}

fn parse_u32_digits(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 10 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(c - b'0');
    }
    u32::try_from(v).ok()
}

/// Finds the end of a quoted string. `s[0]` must be `"`; returns the index just after the
/// closing quote, honouring `quoted-pair` escapes (`\"`, `\\`, and any other escaped octet).
pub(crate) fn quoted_end(s: &[u8]) -> Option<usize> {
    debug_assert_eq!(s.first(), Some(&b'"'));
    let mut i = 1;
    while i < s.len() {
        match s[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Splits `s` at the first `sep` that is not inside a quoted string or `<...>`.
/// Returns `(before, Some(after))`, or `(s, None)` when there is no such separator.
/// An unterminated quote or bracket makes the rest of the input one piece.
pub(crate) fn split_unquoted(s: &[u8], sep: u8) -> (&[u8], Option<&[u8]>) {
    // Jump from one interesting byte to the next with memchr instead of testing every byte:
    // outside `<...>` those are the separator, a quote and '<'; inside, only '>' ends it (a URI
    // holds no raw '"').
    let mut i = 0;
    while i < s.len() {
        let Some(n) = memchr::memchr3(sep, b'"', b'<', &s[i..]) else {
            break;
        };
        i += n;
        match s[i] {
            b'"' => match quoted_end(&s[i..]) {
                Some(n) => i += n,
                None => return (s, None),
            },
            b'<' => match memchr::memchr(b'>', &s[i..]) {
                Some(n) => i += n + 1,
                None => return (s, None),
            },
            _ => return (&s[..i], Some(&s[i + 1..])),
        }
    }
    (s, None)
}

/// Iterates the comma-separated elements of a header value (RFC 3261 §7.3.1), skipping commas
/// inside quoted strings and angle brackets. Elements are trimmed; empty elements are yielded as
/// empty slices so that validators can reject them.
#[derive(Debug, Clone)]
#[allow(unreachable_pub)] // reachable through `_benchable`
pub struct CommaList<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> CommaList<'a> {
    /// Iterates the elements of `value`.
    pub fn new(value: &'a [u8]) -> Self {
        Self { rest: Some(value) }
    }
}

impl<'a> Iterator for CommaList<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        let (item, after) = split_unquoted(rest, b',');
        self.rest = after;
        Some(trim(item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u32_parse_rejects_overflow_and_signs() {
        assert_eq!(parse_u32(b"0000000009"), Some(9));
        assert_eq!(parse_u32(b"4294967295"), Some(u32::MAX));
        assert_eq!(parse_u32(b"4294967296"), None);
        assert_eq!(parse_u32(b"-1"), None);
        assert_eq!(parse_u32(b""), None);
        assert_eq!(parse_u32(b"00000000000000000001"), Some(1));
        assert_eq!(parse_u32(b"0"), Some(0));
        assert_eq!(parse_u32(b"000"), Some(0));
    }

    #[test]
    fn comma_list_respects_quotes_and_brackets() {
        let v: Vec<&[u8]> = CommaList::new(b"\"a,b\" <sip:x;p=1,2>, <sip:y> ").collect();
        assert_eq!(v, vec![&b"\"a,b\" <sip:x;p=1,2>"[..], b"<sip:y>"]);
    }

    #[test]
    fn quoted_end_handles_escapes() {
        assert_eq!(quoted_end(b"\"a\\\"b\" rest"), Some(6));
        assert_eq!(quoted_end(b"\"open"), None);
    }
}
