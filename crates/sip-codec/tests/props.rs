//! Property tests: what the writer writes, the parser reads back unchanged; every prefix of a
//! valid stream is `Partial`, never an error; no input makes the codec panic.

use proptest::prelude::*;
use sip_codec::{frame, parse, Frame, Limits, StartLine, Status, Writer, EMPTY_HEADER};

#[derive(Debug, Clone)]
enum Start {
    Request { method: String, uri: String },
    Response { code: u16, reason: String },
}

#[derive(Debug, Clone)]
struct Model {
    start: Start,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn start() -> impl Strategy<Value = Start> {
    prop_oneof![
        (
            prop_oneof![
                Just("INVITE".to_string()),
                Just("ACK".to_string()),
                Just("BYE".to_string()),
                Just("REGISTER".to_string()),
                "[A-Z]{3,12}",
            ],
            "sips?:[a-z0-9+#]{1,12}@[a-z]{1,10}\\.example\\.com(:[1-9][0-9]{0,3})?(;[a-z]{1,6}(=[a-z0-9]{1,6})?){0,3}",
        )
            .prop_map(|(method, uri)| Start::Request { method, uri }),
        (100u16..700, "[ -~]{0,24}").prop_map(|(code, reason)| Start::Response { code, reason }),
    ]
}

fn header() -> impl Strategy<Value = (String, String)> {
    let name = prop_oneof![
        Just("Via".to_string()),
        Just("v".to_string()),
        Just("From".to_string()),
        Just("To".to_string()),
        Just("Call-ID".to_string()),
        Just("CSeq".to_string()),
        Just("Contact".to_string()),
        Just("Record-Route".to_string()),
        Just("WWW-Authenticate".to_string()),
        "X-[A-Za-z0-9-]{1,16}",
        "[a-zA-Z][a-zA-Z0-9.!%*_+`'~-]{0,20}",
    ]
    .prop_filter("Content-Length is computed by the writer", |n| {
        !n.eq_ignore_ascii_case("content-length") && !n.eq_ignore_ascii_case("l")
    });
    // Values as the parser returns them: no leading/trailing white space, no line breaks.
    let value = prop_oneof![Just(String::new()), "[!-~]([ -~]{0,60}[!-~])?"];
    (name, value)
}

fn model() -> impl Strategy<Value = Model> {
    (
        start(),
        prop::collection::vec(header(), 0..24),
        prop::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(start, headers, body)| Model {
            start,
            headers,
            body,
        })
}

fn write(m: &Model, out: &mut Vec<u8>) {
    let mut w = Writer::new(out);
    match &m.start {
        Start::Request { method, uri } => w.request_line(method.as_bytes(), &[uri.as_bytes()]),
        Start::Response { code, reason } => w.status_line(*code, reason.as_bytes()),
    };
    for (n, v) in &m.headers {
        w.header_named(n.as_bytes(), v.as_bytes());
    }
    w.finish_with_body(&m.body);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn writer_output_reparses_to_the_same_message(m in model()) {
        let mut out = Vec::new();
        write(&m, &mut out);
        let mut headers = [EMPTY_HEADER; 32];
        let p = parse(&out, &mut headers).expect("writer output parses");
        match (&m.start, p.start) {
            (Start::Request { method, uri }, StartLine::Request { method_raw, uri: u, .. }) => {
                prop_assert_eq!(method.as_bytes(), method_raw);
                prop_assert_eq!(uri.as_bytes(), u);
            }
            (Start::Response { code, reason }, StartLine::Response { code: c, reason: r }) => {
                prop_assert_eq!(*code, c);
                prop_assert_eq!(reason.as_bytes(), r);
            }
            (a, b) => prop_assert!(false, "start line changed: {:?} -> {:?}", a, b),
        }
        prop_assert_eq!(p.headers.len(), m.headers.len() + 1, "written headers + Content-Length");
        for (h, (n, v)) in p.headers.iter().zip(&m.headers) {
            prop_assert_eq!(h.name, n.as_bytes());
            prop_assert_eq!(h.value, v.as_bytes());
        }
        prop_assert_eq!(p.body, &m.body[..]);
        prop_assert_eq!(p.len, out.len());

        // Copying every header of the parsed message reproduces the same bytes.
        let mut again = Vec::new();
        let mut w = Writer::new(&mut again);
        match p.start {
            StartLine::Request { method_raw, uri, .. } => w.request_line(method_raw, &[uri]),
            StartLine::Response { code, reason } => w.status_line(code, reason),
        };
        w.copy_all(&p, |_| true);
        w.finish_with_body(p.body);
        prop_assert_eq!(&again, &out);
    }

    #[test]
    fn every_prefix_of_a_stream_is_partial(m in model(), keepalive in any::<bool>()) {
        let mut stream = Vec::new();
        if keepalive {
            stream.extend_from_slice(b"\r\n\r\n");
        }
        let msg_at = stream.len();
        write(&m, &mut stream);
        let limits = Limits::default();
        let mut pos = 0;
        if keepalive {
            prop_assert_eq!(frame(&stream, &limits), Ok(Status::Complete(Frame::KeepAlive { len: 4 })));
            pos = msg_at;
        }
        let rest = &stream[pos..];
        for n in 0..rest.len() {
            prop_assert_eq!(frame(&rest[..n], &limits), Ok(Status::Partial), "prefix of {} bytes", n);
        }
        prop_assert_eq!(frame(rest, &limits), Ok(Status::Complete(Frame::Message { len: rest.len() })));
        // A following message does not change where the first one ends.
        let mut two = rest.to_vec();
        two.extend_from_slice(rest);
        prop_assert_eq!(frame(&two, &limits), Ok(Status::Complete(Frame::Message { len: rest.len() })));
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..2048)) {
        let mut headers = [EMPTY_HEADER; 32];
        if let Ok(m) = parse(&data, &mut headers) {
            let _ = m.validate();
            let _ = m.vias().count();
            let _ = m.contacts().iter().count();
        }
        let _ = frame(&data, &Limits { max_headers: 8, max_header_bytes: 512, max_body_bytes: 512 });
    }

    #[test]
    fn sip_shaped_garbage_never_panics(
        lines in prop::collection::vec("[ -~]{0,40}", 0..16),
        sep in prop_oneof![Just("\r\n"), Just("\n"), Just("\r\n "), Just("\r")],
    ) {
        let mut data = b"INVITE sip:a@b SIP/2.0\r\n".to_vec();
        for l in &lines {
            data.extend_from_slice(l.as_bytes());
            data.extend_from_slice(sep.as_bytes());
        }
        data.extend_from_slice(b"\r\n");
        let mut headers = [EMPTY_HEADER; 32];
        if let Ok(m) = parse(&data, &mut headers) {
            let _ = m.validate();
            let _ = m.from();
            let _ = m.to();
            let _ = m.cseq();
            let _ = m.vias().count();
        }
    }
}
