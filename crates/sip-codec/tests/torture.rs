//! RFC 4475 (SIP torture tests) and RFC 5118 (IPv6 torture tests) as the conformance suite.
//!
//! `tests/data/` holds every message byte-exact with `MANIFEST.tsv` (copied from shared/sip-torture,
//! checked by `SHA256SUMS`). A message is *accepted* when [`parse`] and [`Message::validate`] both
//! succeed: that is what the daemon does before acting on a datagram. Each manifest row says
//! `accept`, `reject` or `either`; for `either` the table below records sbcd's choice and why.

use sip_codec::{
    frame, parse, HeaderKind, Host, Limits, Message, ParseError, Status, Uri, EMPTY_HEADER,
};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

/// sbcd's outcome for every message the RFCs let an implementation accept or reject.
/// `true` = accepted. The reason is the argument from the RFC text.
const EITHER: &[(&str, bool, &str)] = &[
    ("quotbal", false, "an unterminated quoted string is rejected rather than guessing where it ends (4475 §3.1.2.6)"),
    ("ltgtruri", false, "a Request-URI in <> is rejected; sbcd never re-emits it (4475 §3.1.2.7)"),
    ("lwsruri", false, "LWS inside the Request-URI makes the request line have more than three parts (4475 §3.1.2.8)"),
    ("lwsstart", false, "the request line takes exactly single SPs (RFC 3261 §7.1); extra SP is malformed"),
    ("trws", false, "trailing SP after the version is malformed (RFC 3261 §7.1)"),
    ("escruri", false, "escaped headers are not allowed in a Request-URI (RFC 3261 §19.1.1 table)"),
    ("baddate", true, "sbcd does not use Date, and RFC 4475 §3.1.2.12 lets such an element ignore it"),
    ("regbadct", false, "a URI with '?' must be in <> (RFC 3261 §20); guessing the brackets could misroute a REGISTER"),
    ("badaspec", false, "spaces inside <> are not part of any URI grammar (4475 §3.1.2.14)"),
    ("baddn", false, "a display name with ',' must be quoted (4475 §3.1.2.15)"),
    ("badvers", false, "SIP/7.0 parses but validate() returns UnsupportedVersion so the UAS answers 505"),
    ("mismatch01", false, "CSeq method must equal the request method (RFC 3261 §8.1.1.5)"),
    ("mismatch02", false, "same mismatch; RFC 4475 §3.1.2.18 allows 400 instead of 501"),
    ("badbranch", true, "a bare magic cookie is syntactically a branch; the transaction layer falls back to RFC 2543 matching"),
    ("insuf", false, "Call-ID, From and To are mandatory (RFC 3261 §8.1.1)"),
    ("multi01", false, "two To/From/Call-ID/CSeq/Max-Forwards are ambiguous; silently picking one is wrong"),
    ("inv2543", true, "RFC 2543 INVITE: no branch, no From tag, no Content-Length (body = rest of datagram, RFC 3261 §18.3)"),
];

struct Row {
    name: String,
    expect: String,
}

fn manifest() -> Vec<Row> {
    let text =
        std::fs::read_to_string(format!("{DATA}/MANIFEST.tsv")).expect("MANIFEST.tsv is a fixture");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("name\t") && !l.is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            Row {
                name: cols[0].to_string(),
                expect: cols[3].to_string(),
            }
        })
        .collect()
}

fn load(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DATA}/{name}.dat")).expect("fixture exists")
}

fn outcome(buf: &[u8]) -> Result<(), ParseError> {
    let mut headers = [EMPTY_HEADER; 64];
    let m = parse(buf, &mut headers)?;
    m.validate()
}

fn with<R>(name: &str, f: impl FnOnce(&Message<'_, '_>) -> R) -> R {
    let buf = load(name);
    let mut headers = [EMPTY_HEADER; 64];
    let m = parse(&buf, &mut headers).unwrap_or_else(|e| panic!("{name}: {e}"));
    f(&m)
}

#[test]
fn every_manifest_message_meets_its_expectation() {
    let rows = manifest();
    assert_eq!(rows.len(), 61, "49 RFC 4475 + 12 RFC 5118 messages");
    let mut failures = Vec::new();
    for row in &rows {
        let got = outcome(&load(&row.name));
        let want_accept = match row.expect.as_str() {
            "accept" => true,
            "reject" => false,
            "either" => {
                let (_, accept, _) = EITHER
                    .iter()
                    .find(|(n, _, _)| *n == row.name)
                    .unwrap_or_else(|| {
                        panic!("{}: 'either' row without a recorded decision", row.name)
                    });
                *accept
            }
            other => panic!("{}: unknown expectation {other}", row.name),
        };
        if got.is_ok() != want_accept {
            failures.push(format!(
                "{}: expected {}, got {:?}",
                row.name,
                if want_accept { "accept" } else { "reject" },
                got
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Every recorded decision belongs to a manifest row.
    for (name, _, _) in EITHER {
        assert!(
            rows.iter().any(|r| r.name == *name && r.expect == "either"),
            "{name} is not an 'either' row"
        );
    }
}

#[test]
fn rejections_say_what_is_wrong() {
    let cases: &[(&str, ParseError)] = &[
        ("clerr", ParseError::Truncated),
        ("ncl", ParseError::ContentLength("negative")),
        ("mcl01", ParseError::ContentLength("two headers disagree")),
        (
            "bigcode",
            ParseError::StartLine("status code is not three digits"),
        ),
        ("badvers", ParseError::UnsupportedVersion),
        ("mismatch01", ParseError::CSeqMethodMismatch),
        ("insuf", ParseError::MissingHeader(HeaderKind::CallId)),
    ];
    for (name, want) in cases {
        assert_eq!(outcome(&load(name)), Err(*want), "{name}");
    }
    // scalar02 / scalarlg: CSeq beyond 2^32-1 names the header.
    for name in ["scalar02", "scalarlg"] {
        match outcome(&load(name)) {
            Err(ParseError::Header {
                header: HeaderKind::CSeq,
                ..
            }) => {}
            other => panic!("{name}: {other:?}"),
        }
    }
    assert!(matches!(
        outcome(&load("multi01")),
        Err(ParseError::DuplicateHeader(_))
    ));
    match outcome(&load("badinv01")) {
        Err(ParseError::Header {
            header: HeaderKind::Via,
            ..
        }) => {}
        other => panic!("badinv01: {other:?}"),
    }
    assert!(matches!(
        outcome(&load("ipv6-bad")),
        Err(ParseError::Uri(_))
    ));
    // On a stream, clerr is not an error but an incomplete message: frame() waits for the 9999
    // bytes (the caller's limits and timers bound the wait). Conflicting lengths (mcl01) make
    // the framing ambiguous: an error, so the connection is closed.
    let limits = Limits::default();
    assert_eq!(frame(&load("clerr"), &limits), Ok(Status::Partial));
    assert_eq!(
        frame(&load("mcl01"), &limits),
        Err(ParseError::ContentLength("two headers disagree"))
    );
    assert_eq!(
        frame(&load("ncl"), &limits),
        Err(ParseError::ContentLength("negative"))
    );
}

#[test]
fn wsinv_values_survive_folding_and_lws() {
    with("wsinv", |m| {
        assert_eq!(m.max_forwards(), Ok(Some(68)));
        let cseq = m.cseq().unwrap();
        assert_eq!((cseq.seq, cseq.method), (9, &b"INVITE"[..]));
        let vias: Vec<_> = m.vias().map(Result::unwrap).collect();
        assert_eq!(vias.len(), 3);
        assert_eq!(vias[1].host_raw, b"spindle.example.com");
        assert_eq!(vias[2].branch(), Some(&b"z9hG4bK30239"[..]));
        let from = m.from().unwrap();
        assert_eq!(from.display_unquoted(), Some(&br#"J Rosenberg \\\""#[..]));
        assert_eq!(from.tag(), Some(&b"98asjd8"[..]));
        assert_eq!(m.to().unwrap().tag(), Some(&b"1918181833n"[..]));
        assert_eq!(
            m.header(HeaderKind::Subject).map(|h| h.value),
            Some(&b""[..])
        );
        let contact = m.contacts().iter().next().unwrap().unwrap();
        assert_eq!(contact.q(), Some(Ok(330)));
        assert_eq!(m.body.len(), 150);
    });
}

#[test]
fn dblreq_ignores_the_trailing_invite() {
    let buf = load("dblreq");
    with("dblreq", |m| {
        assert_eq!(m.method(), Some(sip_codec::Method::Register));
        assert!(m.body.is_empty());
        assert!(
            m.len < buf.len(),
            "the trailing INVITE is not part of the message"
        );
    });
}

#[test]
fn uri_user_parts_and_schemes() {
    with("semiuri", |m| {
        let Ok(Uri::Sip(u)) = Uri::parse(m.request_uri().unwrap()) else {
            panic!("sip uri")
        };
        assert_eq!(u.user, Some(&b"user;par=u%40example.net"[..]));
        assert_eq!(u.host, Host::Name("example.com"));
        assert!(u.params.is_empty());
    });
    with("unkscm", |m| {
        assert!(matches!(
            Uri::parse(m.request_uri().unwrap()),
            Ok(Uri::Absolute(_))
        ))
    });
    with("esc02", |m| {
        // The method and header name are taken literally: no unescaping outside URIs.
        assert_eq!(m.method(), Some(sip_codec::Method::Other));
        assert!(m.header_named(b"C%6Fntact").is_some());
    });
    with("cparam01", |m| {
        let c = m.contacts().iter().next().unwrap().unwrap();
        assert!(
            c.params.contains(b"unknownparam"),
            "header param in addr-spec form"
        );
    });
    with("cparam02", |m| {
        let c = m.contacts().iter().next().unwrap().unwrap();
        assert!(!c.params.contains(b"unknownparam"));
        let Ok(Uri::Sip(u)) = c.parse_uri() else {
            panic!()
        };
        assert!(
            u.params.contains(b"unknownparam"),
            "URI param in name-addr form"
        );
    });
}

#[test]
fn ipv6_references() {
    with("port-ambiguous", |m| {
        let Ok(Uri::Sip(u)) = Uri::parse(m.request_uri().unwrap()) else {
            panic!()
        };
        assert_eq!(u.host, Host::V6("2001:db8::10:5070".parse().unwrap()));
        assert_eq!(u.port, None);
    });
    with("port-unambiguous", |m| {
        let Ok(Uri::Sip(u)) = Uri::parse(m.request_uri().unwrap()) else {
            panic!()
        };
        assert_eq!(u.port, Some(5070));
    });
    for name in [
        "via-received-param-with-delim",
        "via-received-param-no-delim",
    ] {
        with(name, |m| {
            let via = m.top_via().unwrap();
            assert!(matches!(via.received(), Some(Ok(Host::V6(_)))), "{name}");
        });
    }
    with("mult-ip-in-header", |m| {
        let vias: Vec<_> = m.vias().map(Result::unwrap).collect();
        assert_eq!(vias.len(), 3);
        assert!(matches!(vias[0].host, Host::V6(_)));
    });
    with("ipv6-bug-abnf-3-colons", |m| {
        assert!(Uri::parse(m.request_uri().unwrap()).is_ok());
    });
}

#[test]
fn mpart01_body_is_opaque() {
    with("mpart01", |m| {
        assert_eq!(m.body.len() as u32, m.content_length.unwrap());
        assert!(m.body.contains(&0), "binary part kept");
    });
}

#[test]
fn no_message_panics_under_truncation_or_mutation() {
    for row in manifest() {
        let buf = load(&row.name);
        for n in 0..=buf.len() {
            let _ = outcome(&buf[..n]);
        }
        for i in 0..buf.len() {
            for b in [0u8, b'\r', b'\n', b' ', b':', b';', b',', b'"', b'<', 0xff] {
                let mut m = buf.clone();
                m[i] = b;
                let _ = outcome(&m);
            }
        }
    }
}
