//! The harness of the whole-flow tests: a shard fed real SIP text with injected time, and
//! helpers to read what it sends and to write what scripted peers answer.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use b2bua::{Event, Incoming, Locals, Routing, Shard, ShardOptions, Transmit, Transport};
use sip_codec::{HeaderKind, Message, StartLine, Writer, EMPTY_HEADER};

/// `[sip]`, `[media]` and `[admin]` of every flow test: sbcd on udp 127.0.0.1:5060.
pub const SECTIONS: &str = r#"
[sip]
listen = ["udp:127.0.0.1:5060"]
[media]
listen = "127.0.0.1"
port_min = 20000
port_max = 20099
[admin]
listen = "127.0.0.1:9060"
"#;

/// The configuration of `trunks` after [`SECTIONS`].
pub fn load(trunks: &str) -> sbc_config::Config {
    sbc_config::load_str(&format!("{SECTIONS}{trunks}"), Path::new(".")).expect("test config")
}

pub const SBC: &str = "127.0.0.1:5060";
pub const PBX: &str = "127.0.0.1:5070";
pub const CARRIER: &str = "127.0.0.2:5080";
pub const BACKUP: &str = "127.0.0.3:5090";

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A shard and a clock.
pub struct Net {
    pub shard: Shard,
    pub now: Instant,
}

impl Net {
    /// A shard with `trunks` (the `[[trunk]]` and `[[route]]` tables; [`SECTIONS`] come first).
    pub fn with_config(trunks: &str) -> Self {
        Self::with_options(trunks, |_| {})
    }

    /// [`Net::with_config`] with options changed by `edit` (media anchoring, …).
    pub fn with_options(trunks: &str, edit: impl FnOnce(&mut ShardOptions)) -> Self {
        let config = load(trunks);
        let shared = Arc::new(trunks::Shared::new([7; 32], Instant::now()));
        let routing = Arc::new(Routing::new(config, shared, |_, _, _| Vec::new()));
        let locals = Locals::new(&[(Transport::Udp, addr(SBC))], None);
        let mut opts = ShardOptions {
            seed: 7,
            ..ShardOptions::default()
        };
        edit(&mut opts);
        let now = Instant::now();
        let mut shard = Shard::new(&opts, routing, locals);
        // The driver's first wake-up (starts registrations on behalf, if any).
        shard.handle_timeout(now);
        Self { shard, now }
    }

    /// `from` sends `msg` to sbcd; returns what sbcd sends in reply.
    pub fn send(&mut self, from: &str, msg: &[u8]) -> Vec<Sent> {
        self.shard.handle_message(
            self.now,
            Incoming {
                data: msg,
                source: addr(from),
                transport: Transport::Udp,
                conn: None,
            },
        );
        self.drain()
    }

    pub fn drain(&mut self) -> Vec<Sent> {
        std::iter::from_fn(|| self.shard.poll_transmit())
            .map(Sent::from)
            .collect()
    }

    /// Advances the clock by `d`, running timers on the way.
    pub fn advance(&mut self, d: Duration) -> Vec<Sent> {
        let end = self.now + d;
        let mut out = self.drain();
        while let Some(t) = self.shard.poll_timeout().filter(|&t| t <= end) {
            self.now = self.now.max(t);
            self.shard.handle_timeout(self.now);
            out.extend(self.drain());
        }
        self.now = end;
        out
    }

    pub fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.shard.poll_event()).collect()
    }
}

/// The credentials a client sends for the challenge (header `kind`) in response `resp`.
pub fn credentials(
    resp: &Sent,
    kind: HeaderKind,
    user: &str,
    password: &str,
    method: &str,
    uri: &str,
    nc: u32,
) -> String {
    let value = resp.header(kind).expect("a challenge");
    let c = sip_codec::Challenge::parse(value.as_bytes(), kind).unwrap();
    let req = trunks::answer::Request {
        method: method.as_bytes(),
        uri: uri.as_bytes(),
        cnonce: b"c0ffee",
        nc,
        realm_override: None,
        body: b"",
    };
    let v = trunks::answer::answer(&c, user.as_bytes(), password.as_bytes(), &req).unwrap();
    String::from_utf8(v).unwrap()
}

/// One message sbcd sent.
#[derive(Debug, Clone)]
pub struct Sent {
    pub to: SocketAddr,
    pub text: String,
    pub token: u64,
}

impl From<Transmit> for Sent {
    fn from(t: Transmit) -> Self {
        Self {
            to: t.dest,
            text: String::from_utf8(t.data.to_vec()).expect("sbcd writes UTF-8 here"),
            token: t.token,
        }
    }
}

impl Sent {
    pub fn with<R>(&self, f: impl FnOnce(&Message<'_, '_>) -> R) -> R {
        let mut hs = [EMPTY_HEADER; 64];
        let msg = sip_codec::parse(self.text.as_bytes(), &mut hs).expect("sbcd's output parses");
        msg.validate().expect("sbcd's output is valid");
        f(&msg)
    }
    pub fn code(&self) -> Option<u16> {
        self.with(|m| m.status_code())
    }
    pub fn method(&self) -> Option<String> {
        self.with(|m| match m.start {
            StartLine::Request { method_raw, .. } => {
                Some(String::from_utf8_lossy(method_raw).into_owned())
            }
            StartLine::Response { .. } => None,
        })
    }
    pub fn header(&self, kind: HeaderKind) -> Option<String> {
        self.with(|m| {
            m.header(kind)
                .map(|h| String::from_utf8_lossy(h.value).into_owned())
        })
    }
    pub fn cseq(&self) -> (u32, String) {
        self.with(|m| {
            let c = m.cseq().unwrap();
            (c.seq, String::from_utf8_lossy(c.method).into_owned())
        })
    }
    pub fn vias(&self) -> usize {
        self.with(|m| m.vias().count())
    }
    pub fn body(&self) -> String {
        self.with(|m| String::from_utf8_lossy(m.body).into_owned())
    }
}

/// The one message in `sent` that goes to `to` and satisfies `pred`.
pub fn one<'a>(sent: &'a [Sent], to: &str, what: &str, pred: impl Fn(&Sent) -> bool) -> &'a Sent {
    let found: Vec<&Sent> = sent
        .iter()
        .filter(|s| s.to == addr(to) && pred(s))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one {what} to {to}, got {}: {sent:#?}",
        found.len()
    );
    found[0]
}

pub fn is_req(m: &'static str) -> impl Fn(&Sent) -> bool {
    move |s| s.method().as_deref() == Some(m)
}

pub fn is_code(c: u16) -> impl Fn(&Sent) -> bool {
    move |s| s.code() == Some(c)
}

pub const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n";

/// The PBX's INVITE to sbcd.
pub fn pbx_invite(call_id: &str, number: &str) -> Vec<u8> {
    format!(
        "INVITE sip:{number}@127.0.0.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-pbx-{call_id};rport\r\n\
         Max-Forwards: 70\r\n\
         From: \"Alice\" <sip:2001@127.0.0.1:5070>;tag=pbxtag\r\n\
         To: <sip:{number}@127.0.0.1:5060>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 10 INVITE\r\n\
         Contact: <sip:2001@127.0.0.1:5070>\r\n\
         X-Internal: secret-pbx-thing\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{SDP}",
        SDP.len()
    )
    .into_bytes()
}

/// A response from a UA to `req`, with `to_tag` and a Contact at `contact`.
pub fn answer(
    req: &Sent,
    code: u16,
    to_tag: &str,
    contact: &str,
    extra: &[(&str, &str)],
    body: &str,
) -> Vec<u8> {
    req.with(|m| {
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out);
        w.status_line(code, b"Whatever");
        w.copy_all(m, |h| {
            matches!(
                h.kind,
                HeaderKind::Via | HeaderKind::From | HeaderKind::CallId | HeaderKind::CSeq
            )
        });
        let to = m.header(HeaderKind::To).unwrap().value;
        if m.to().unwrap().tag().is_some() {
            w.header(HeaderKind::To, to);
        } else {
            w.header_parts(b"To", &[to, b";tag=", to_tag.as_bytes()]);
        }
        w.header_parts(b"Contact", &[b"<sip:ua@", contact.as_bytes(), b">"]);
        for (n, v) in extra {
            w.header_named(n.as_bytes(), v.as_bytes());
        }
        if body.is_empty() {
            w.finish();
        } else {
            w.header(HeaderKind::ContentType, b"application/sdp");
            w.finish_with_body(body.as_bytes());
        }
        out
    })
}

/// An in-dialog request on a leg, built from what that side knows: `dialog` is a message of
/// the dialog as that side saw it (a request it received, or a 2xx it received).
pub fn in_dialog(
    method: &str,
    ruri: &str,
    from_side: &str,
    dialog: &Sent,
    seq: u32,
    i_am_uac: bool,
    body: &str,
) -> Vec<u8> {
    dialog.with(|m| {
        let from = m.header(HeaderKind::From).unwrap().value;
        let to = m.header(HeaderKind::To).unwrap().value;
        let (f, t) = if i_am_uac { (from, to) } else { (to, from) };
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out);
        w.request_line(method.as_bytes(), &[ruri.as_bytes()]);
        w.header_parts(
            b"Via",
            &[
                b"SIP/2.0/UDP ",
                from_side.as_bytes(),
                b";branch=z9hG4bK-",
                method.as_bytes(),
                itoa::Buffer::new().format(seq).as_bytes(),
            ],
        );
        w.header_u32(HeaderKind::MaxForwards, 70);
        w.header(HeaderKind::From, f).header(HeaderKind::To, t);
        w.header(HeaderKind::CallId, m.call_id().unwrap());
        w.cseq(seq, method.as_bytes());
        if method == "INVITE" {
            w.header_parts(b"Contact", &[b"<sip:ua@", from_side.as_bytes(), b">"]);
        }
        if body.is_empty() {
            w.finish();
        } else {
            w.header(HeaderKind::ContentType, b"application/sdp");
            w.finish_with_body(body.as_bytes());
        }
        out
    })
}

pub fn assert_hidden(msg: &Sent, secrets: &[&str]) {
    for s in secrets {
        assert!(!msg.text.contains(s), "{s:?} leaked into:\n{}", msg.text);
    }
}
