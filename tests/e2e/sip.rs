//! Just enough SIP to read what SIPp logged: start line, headers in order (compact forms
//! expanded), body. Deliberately independent of `sip-codec`, so a codec bug cannot hide itself
//! in the assertions about sbcd's output.

use std::fmt;

/// One SIP message as it appeared on the wire.
#[derive(Debug, Clone)]
pub(crate) struct SipMsg {
    pub(crate) start: String,
    headers: Vec<(String, String)>,
    pub(crate) body: String,
}

/// Compact header forms (RFC 3261 7.3.3 and extensions) expanded to the long names used here.
const COMPACT: &[(&str, &str)] = &[
    ("v", "via"),
    ("f", "from"),
    ("t", "to"),
    ("i", "call-id"),
    ("m", "contact"),
    ("l", "content-length"),
    ("c", "content-type"),
    ("k", "supported"),
    ("s", "subject"),
    ("e", "content-encoding"),
];

impl SipMsg {
    /// Parses one message; `None` when there is no start line at all.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let text = text.trim_start_matches(['\r', '\n']);
        let (head, body) = match text.find("\r\n\r\n") {
            Some(i) => (&text[..i], &text[i + 4..]),
            None => match text.find("\n\n") {
                Some(i) => (&text[..i], &text[i + 2..]),
                None => (text, ""),
            },
        };
        let mut lines = head.split('\n').map(|l| l.trim_end_matches('\r'));
        let start = lines.next()?.trim().to_owned();
        if start.is_empty() {
            return None;
        }
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with([' ', '\t']) {
                // Folded continuation line.
                if let Some(last) = headers.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(line.trim());
                }
                continue;
            }
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let name = name.trim().to_ascii_lowercase();
            let name = COMPACT
                .iter()
                .find(|(short, _)| *short == name)
                .map_or(name.clone(), |(_, long)| (*long).to_owned());
            headers.push((name, value.trim().to_owned()));
        }
        let body = match Self::content_length(&headers) {
            Some(len) if len <= body.len() => body[..len].to_owned(),
            _ => body.to_owned(),
        };
        Some(Self {
            start,
            headers,
            body,
        })
    }

    fn content_length(headers: &[(String, String)]) -> Option<usize> {
        headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
    }

    pub(crate) fn is_request(&self) -> bool {
        !self.start.starts_with("SIP/")
    }

    /// The request method, or `None` for a response.
    pub(crate) fn method(&self) -> Option<&str> {
        self.is_request()
            .then(|| self.start.split(' ').next().unwrap_or(""))
    }

    /// The status code, or `None` for a request.
    pub(crate) fn status(&self) -> Option<u16> {
        if self.is_request() {
            return None;
        }
        self.start.split(' ').nth(1)?.parse().ok()
    }

    pub(crate) fn request_uri(&self) -> Option<&str> {
        if self.is_request() {
            self.start.split(' ').nth(1)
        } else {
            None
        }
    }

    /// The user part of the Request-URI (`sip:USER@host`).
    pub(crate) fn ruri_user(&self) -> Option<&str> {
        let uri = self.request_uri()?;
        let rest = uri.split_once(':')?.1;
        let (user, _) = rest.split_once('@')?;
        Some(user.split(';').next().unwrap_or(user))
    }

    /// Every value of header `name` (long form, any case), in order.
    pub(crate) fn headers(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers(name).into_iter().next()
    }

    /// Every Via value: header lines and comma-separated values both count.
    pub(crate) fn vias(&self) -> Vec<String> {
        self.headers("via")
            .into_iter()
            .flat_map(split_commas)
            .collect()
    }

    pub(crate) fn top_via_branch(&self) -> Option<String> {
        let via = self.vias().into_iter().next()?;
        param(&via, "branch").map(str::to_owned)
    }

    pub(crate) fn call_id(&self) -> Option<&str> {
        self.header("call-id")
    }

    /// (number, method) of the CSeq header.
    pub(crate) fn cseq(&self) -> Option<(u32, String)> {
        let value = self.header("cseq")?;
        let mut parts = value.split_whitespace();
        let number = parts.next()?.parse().ok()?;
        let method = parts.next()?.to_owned();
        Some((number, method))
    }

    pub(crate) fn tag_in_from(&self) -> Option<String> {
        self.header("from")
            .and_then(|v| param(v, "tag"))
            .map(str::to_owned)
    }

    pub(crate) fn tag_in_to(&self) -> Option<String> {
        self.header("to")
            .and_then(|v| param(v, "tag"))
            .map(str::to_owned)
    }

    pub(crate) fn max_forwards(&self) -> Option<u32> {
        self.header("max-forwards")?.trim().parse().ok()
    }

    /// A one-line description: start line, CSeq and Call-ID.
    pub(crate) fn summary(&self) -> String {
        format!(
            "{} [CSeq: {}; Call-ID: {}]",
            self.start,
            self.header("cseq").unwrap_or("-"),
            self.call_id().unwrap_or("-")
        )
    }
}

impl fmt::Display for SipMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.start)?;
        for (name, value) in &self.headers {
            writeln!(f, "{name}: {value}")?;
        }
        if !self.body.is_empty() {
            writeln!(f)?;
            write!(f, "{}", self.body)?;
        }
        Ok(())
    }
}

/// Splits a header value at commas that are outside quotes and angle brackets.
pub(crate) fn split_commas(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut quoted, mut angle, mut start) = (false, false, 0);
    let bytes = value.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b'<' if !quoted => angle = true,
            b'>' if !quoted => angle = false,
            b',' if !quoted && !angle => {
                out.push(value[start..i].trim().to_owned());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(value[start..].trim().to_owned());
    out.retain(|v| !v.is_empty());
    out
}

/// The value of `;name=value` in a header value (outside its `<...>` URI).
pub(crate) fn param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    let params = match value.rfind('>') {
        Some(i) => &value[i + 1..],
        None => value,
    };
    params.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_request_with_compact_headers_and_body() {
        let text = "INVITE sip:12125551234@127.0.0.2:5080 SIP/2.0\r\n\
                    v: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1, SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK0\r\n\
                    f: \"a, b\" <sip:a@x>;tag=abc\r\n\
                    t: <sip:b@y>\r\n\
                    i: cid-1\r\n\
                    CSeq: 7 INVITE\r\n\
                    Max-Forwards: 69\r\n\
                    l: 4\r\n\r\nv=0\r\n";
        let m = SipMsg::parse(text).unwrap();
        assert_eq!(m.method(), Some("INVITE"));
        assert_eq!(m.ruri_user(), Some("12125551234"));
        assert_eq!(m.vias().len(), 2);
        assert_eq!(m.top_via_branch().as_deref(), Some("z9hG4bK1"));
        assert_eq!(m.tag_in_from().as_deref(), Some("abc"));
        assert_eq!(m.tag_in_to(), None);
        assert_eq!(m.call_id(), Some("cid-1"));
        assert_eq!(m.cseq(), Some((7, "INVITE".to_owned())));
        assert_eq!(m.max_forwards(), Some(69));
        assert_eq!(m.body, "v=0\r");
    }

    #[test]
    fn parses_response() {
        let m = SipMsg::parse("SIP/2.0 486 Busy Here\r\nTo: <sip:b@y>;tag=x\r\n\r\n").unwrap();
        assert_eq!(m.status(), Some(486));
        assert_eq!(m.method(), None);
        assert_eq!(m.tag_in_to().as_deref(), Some("x"));
    }
}
