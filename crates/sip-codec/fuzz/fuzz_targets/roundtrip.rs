//! hickory-style round trip: a message that validates, rebuilt with `Writer` (start line, every
//! header copied, body), parses back to the same start line, headers and body.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sip_codec::{parse, Header, HeaderKind, StartLine, Writer, EMPTY_HEADER};

fuzz_target!(|data: &[u8]| {
    let mut headers = [EMPTY_HEADER; 64];
    let Ok(m) = parse(data, &mut headers) else { return };
    if m.validate().is_err() {
        return;
    }
    let mut out = Vec::new();
    let mut w = Writer::new(&mut out);
    match m.start {
        StartLine::Request { method_raw, uri, .. } => w.request_line(method_raw, &[uri]),
        StartLine::Response { code, reason } => w.status_line(code, reason),
    };
    w.copy_all(&m, |_| true); // every header but Content-Length, which the writer computes
    let len = w.finish_with_body(m.body);
    assert_eq!(len, out.len());

    let mut headers2 = [EMPTY_HEADER; 66];
    let r = parse(&out, &mut headers2).expect("the rebuilt message parses");
    assert_eq!(r.start, m.start);
    assert_eq!(r.body, m.body);
    assert_eq!(r.len, out.len());
    let shown = |hs: &[Header<'_>]| -> Vec<String> {
        let hs = hs.iter().filter(|h| h.kind != HeaderKind::ContentLength);
        hs.map(|h| format!("{}: {}", h.name.escape_ascii(), h.value.escape_ascii())).collect()
    };
    let (before, after) = (shown(m.headers), shown(r.headers));
    assert_eq!(before.len(), after.len(), "header count");
    assert_eq!(before, after);
    r.validate().expect("the rebuilt message validates");
});
