//! The codec's one error type.

use crate::header::HeaderKind;

/// Why a SIP message (or a part of one) could not be parsed.
///
/// Every variant names *where* the problem is (start line, a header, the body framing) and the
/// `&'static str` detail says *what* is wrong, so a log line or a 400 reason phrase can be built
/// from it without allocating. Errors are `Copy` so the hot path can pass them around freely.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The request line or status line is malformed.
    #[error("start line: {0}")]
    StartLine(&'static str),
    /// The SIP version is well formed but not `SIP/2.0` (a UAS answers 505).
    #[error("start line: unsupported SIP version (only SIP/2.0)")]
    UnsupportedVersion,
    /// A header line has no colon, or its name is not a token.
    #[error("header line {line}: {problem}")]
    HeaderLine {
        /// 1-based number of the header line (the start line is line 0).
        line: u16,
        /// What is wrong.
        problem: &'static str,
    },
    /// More header lines than the caller's limit (or the caller's header array) allows.
    #[error("too many header lines")]
    TooManyHeaders,
    /// The header section is larger than the caller's limit.
    #[error("header section larger than the limit")]
    HeadersTooLarge,
    /// The body is larger than the caller's limit.
    #[error("body larger than the limit")]
    BodyTooLarge,
    /// The Content-Length header is malformed, duplicated with a different value, or missing on a stream.
    #[error("Content-Length: {0}")]
    ContentLength(&'static str),
    /// The datagram ends before the body that Content-Length announces.
    #[error("Content-Length: body shorter than announced")]
    Truncated,
    /// A header value does not match its grammar.
    #[error("{header}: {problem}")]
    Header {
        /// Which header.
        header: HeaderKind,
        /// What is wrong.
        problem: &'static str,
    },
    /// A header that RFC 3261 §8.1.1 requires is missing.
    #[error("{0}: missing mandatory header")]
    MissingHeader(HeaderKind),
    /// A header that may appear only once appears more than once.
    #[error("{0}: appears more than once")]
    DuplicateHeader(HeaderKind),
    /// The CSeq method differs from the request method (RFC 3261 §8.1.1.5).
    #[error("CSeq: method does not match the request line")]
    CSeqMethodMismatch,
    /// A URI does not match RFC 3261 §19.1 / RFC 3966 / RFC 3986.
    #[error("URI: {0}")]
    Uri(&'static str),
}

impl ParseError {
    /// Shorthand used by the typed header views.
    pub(crate) const fn header(header: HeaderKind, problem: &'static str) -> Self {
        Self::Header { header, problem }
    }
}
