//! A TCP/TLS receive buffer: `frame` with small limits, then `parse` of the frame it cut.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sip_codec::{frame, parse, Frame, Limits, Status, EMPTY_HEADER};

const LIMITS: Limits = Limits { max_headers: 32, max_header_bytes: 2048, max_body_bytes: 1024 };

fuzz_target!(|data: &[u8]| {
    match frame(data, &LIMITS) {
        Ok(Status::Complete(Frame::KeepAlive { len })) => assert!(len > 0 && len <= data.len()),
        Ok(Status::Complete(Frame::Message { len })) => {
            assert!(len <= data.len(), "frame of {len} bytes from {} bytes of input", data.len());
            let mut headers = [EMPTY_HEADER; 64];
            if let Ok(m) = parse(&data[..len], &mut headers) {
                // frame and parse must agree on where the message ends, or a stream desyncs.
                assert_eq!(m.len, len, "parse ended the message elsewhere than frame");
                let _ = m.validate();
            }
        }
        Ok(Status::Partial) | Err(_) => {}
    }
});
