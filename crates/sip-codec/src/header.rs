//! Header names (RFC 3261 §7.3, §20): the kinds a B2BUA acts on, recognised case-insensitively and
//! in their compact forms, and the borrowed [`Header`] that the parser fills in.

use std::fmt;

macro_rules! header_kinds {
    ($( $(#[$doc:meta])* $kind:ident = $name:literal $(, $compact:literal)? ; )*) => {
        /// A header the codec knows by name. Anything else is [`HeaderKind::Other`] and passes
        /// through untouched; its name is in [`Header::name`].
        #[non_exhaustive]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum HeaderKind {
            $( $(#[$doc])* #[doc = concat!("`", $name, "`")] $kind, )*
            /// Any other header (an extension, or one the codec has no view for).
            Other,
        }

        /// Every known kind (for tests and tables).
        #[cfg(test)]
        const ALL: &[HeaderKind] = &[ $( HeaderKind::$kind, )* ];

        impl HeaderKind {
            /// The canonical spelling of the header name, as the writer emits it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( Self::$kind => $name, )*
                    Self::Other => "Other",
                }
            }

            /// The kind of a compact form (RFC 3261 §7.3.3), case-insensitively.
            fn from_compact(c: u8) -> Self {
                match c.to_ascii_lowercase() {
                    $( $( $compact => Self::$kind, )? )*
                    _ => Self::Other,
                }
            }
        }
    };
}

header_kinds! {
    Via = "Via", b'v';
    From = "From", b'f';
    To = "To", b't';
    CallId = "Call-ID", b'i';
    CSeq = "CSeq";
    MaxForwards = "Max-Forwards";
    Contact = "Contact", b'm';
    Route = "Route";
    RecordRoute = "Record-Route";
    ContentLength = "Content-Length", b'l';
    ContentType = "Content-Type", b'c';
    ContentEncoding = "Content-Encoding", b'e';
    ContentDisposition = "Content-Disposition";
    Expires = "Expires";
    MinExpires = "Min-Expires";
    Allow = "Allow";
    Supported = "Supported", b'k';
    Require = "Require";
    ProxyRequire = "Proxy-Require";
    Unsupported = "Unsupported";
    WwwAuthenticate = "WWW-Authenticate";
    ProxyAuthenticate = "Proxy-Authenticate";
    Authorization = "Authorization";
    ProxyAuthorization = "Proxy-Authorization";
    AuthenticationInfo = "Authentication-Info";
    Subject = "Subject", b's';
    Event = "Event", b'o';
    ReferTo = "Refer-To", b'r';
    AllowEvents = "Allow-Events", b'u';
    SessionExpires = "Session-Expires", b'x';
    MinSe = "Min-SE";
    ReferredBy = "Referred-By", b'b';
    Identity = "Identity", b'y';
    RSeq = "RSeq";
    RAck = "RAck";
    Accept = "Accept";
    Date = "Date";
    RetryAfter = "Retry-After";
    Reason = "Reason";
    UserAgent = "User-Agent";
    Server = "Server";
    Warning = "Warning";
    PAssertedIdentity = "P-Asserted-Identity";
    PPreferredIdentity = "P-Preferred-Identity";
    Privacy = "Privacy";
    Diversion = "Diversion";
}

impl HeaderKind {
    /// Recognises a header name: full form case-insensitively, or a compact form
    /// (RFC 3261 §7.3.3 and later RFCs: i m f t v l c k s e o r u x b y).
    ///
    /// Dispatches on (length, first letter), which the compiler turns into a jump table, so a
    /// name costs at most a few case-insensitive compares. The arms are generated from the list
    /// in `header_kinds!` (a test checks that every name round-trips).
    pub fn from_name(name: &[u8]) -> Self {
        let Some(&first) = name.first() else {
            return Self::Other;
        };
        if name.len() == 1 {
            return Self::from_compact(first);
        }
        match (name.len(), first.to_ascii_lowercase()) {
            (2, b't') => {
                if name.eq_ignore_ascii_case(b"To") {
                    Self::To
                } else {
                    Self::Other
                }
            }
            (3, b'v') => {
                if name.eq_ignore_ascii_case(b"Via") {
                    Self::Via
                } else {
                    Self::Other
                }
            }
            (4, b'c') => {
                if name.eq_ignore_ascii_case(b"CSeq") {
                    Self::CSeq
                } else {
                    Self::Other
                }
            }
            (4, b'd') => {
                if name.eq_ignore_ascii_case(b"Date") {
                    Self::Date
                } else {
                    Self::Other
                }
            }
            (4, b'f') => {
                if name.eq_ignore_ascii_case(b"From") {
                    Self::From
                } else {
                    Self::Other
                }
            }
            (4, b'r') => {
                if name.eq_ignore_ascii_case(b"RSeq") {
                    Self::RSeq
                } else if name.eq_ignore_ascii_case(b"RAck") {
                    Self::RAck
                } else {
                    Self::Other
                }
            }
            (5, b'a') => {
                if name.eq_ignore_ascii_case(b"Allow") {
                    Self::Allow
                } else {
                    Self::Other
                }
            }
            (5, b'e') => {
                if name.eq_ignore_ascii_case(b"Event") {
                    Self::Event
                } else {
                    Self::Other
                }
            }
            (5, b'r') => {
                if name.eq_ignore_ascii_case(b"Route") {
                    Self::Route
                } else {
                    Self::Other
                }
            }
            (6, b'a') => {
                if name.eq_ignore_ascii_case(b"Accept") {
                    Self::Accept
                } else {
                    Self::Other
                }
            }
            (6, b'm') => {
                if name.eq_ignore_ascii_case(b"Min-SE") {
                    Self::MinSe
                } else {
                    Self::Other
                }
            }
            (6, b'r') => {
                if name.eq_ignore_ascii_case(b"Reason") {
                    Self::Reason
                } else {
                    Self::Other
                }
            }
            (6, b's') => {
                if name.eq_ignore_ascii_case(b"Server") {
                    Self::Server
                } else {
                    Self::Other
                }
            }
            (7, b'c') => {
                if name.eq_ignore_ascii_case(b"Call-ID") {
                    Self::CallId
                } else if name.eq_ignore_ascii_case(b"Contact") {
                    Self::Contact
                } else {
                    Self::Other
                }
            }
            (7, b'e') => {
                if name.eq_ignore_ascii_case(b"Expires") {
                    Self::Expires
                } else {
                    Self::Other
                }
            }
            (7, b'p') => {
                if name.eq_ignore_ascii_case(b"Privacy") {
                    Self::Privacy
                } else {
                    Self::Other
                }
            }
            (7, b'r') => {
                if name.eq_ignore_ascii_case(b"Require") {
                    Self::Require
                } else {
                    Self::Other
                }
            }
            (7, b's') => {
                if name.eq_ignore_ascii_case(b"Subject") {
                    Self::Subject
                } else {
                    Self::Other
                }
            }
            (7, b'w') => {
                if name.eq_ignore_ascii_case(b"Warning") {
                    Self::Warning
                } else {
                    Self::Other
                }
            }
            (8, b'i') => {
                if name.eq_ignore_ascii_case(b"Identity") {
                    Self::Identity
                } else {
                    Self::Other
                }
            }
            (8, b'r') => {
                if name.eq_ignore_ascii_case(b"Refer-To") {
                    Self::ReferTo
                } else {
                    Self::Other
                }
            }
            (9, b'd') => {
                if name.eq_ignore_ascii_case(b"Diversion") {
                    Self::Diversion
                } else {
                    Self::Other
                }
            }
            (9, b's') => {
                if name.eq_ignore_ascii_case(b"Supported") {
                    Self::Supported
                } else {
                    Self::Other
                }
            }
            (10, b'u') => {
                if name.eq_ignore_ascii_case(b"User-Agent") {
                    Self::UserAgent
                } else {
                    Self::Other
                }
            }
            (11, b'm') => {
                if name.eq_ignore_ascii_case(b"Min-Expires") {
                    Self::MinExpires
                } else {
                    Self::Other
                }
            }
            (11, b'r') => {
                if name.eq_ignore_ascii_case(b"Referred-By") {
                    Self::ReferredBy
                } else if name.eq_ignore_ascii_case(b"Retry-After") {
                    Self::RetryAfter
                } else {
                    Self::Other
                }
            }
            (11, b'u') => {
                if name.eq_ignore_ascii_case(b"Unsupported") {
                    Self::Unsupported
                } else {
                    Self::Other
                }
            }
            (12, b'a') => {
                if name.eq_ignore_ascii_case(b"Allow-Events") {
                    Self::AllowEvents
                } else {
                    Self::Other
                }
            }
            (12, b'c') => {
                if name.eq_ignore_ascii_case(b"Content-Type") {
                    Self::ContentType
                } else {
                    Self::Other
                }
            }
            (12, b'm') => {
                if name.eq_ignore_ascii_case(b"Max-Forwards") {
                    Self::MaxForwards
                } else {
                    Self::Other
                }
            }
            (12, b'r') => {
                if name.eq_ignore_ascii_case(b"Record-Route") {
                    Self::RecordRoute
                } else {
                    Self::Other
                }
            }
            (13, b'a') => {
                if name.eq_ignore_ascii_case(b"Authorization") {
                    Self::Authorization
                } else {
                    Self::Other
                }
            }
            (13, b'p') => {
                if name.eq_ignore_ascii_case(b"Proxy-Require") {
                    Self::ProxyRequire
                } else {
                    Self::Other
                }
            }
            (14, b'c') => {
                if name.eq_ignore_ascii_case(b"Content-Length") {
                    Self::ContentLength
                } else {
                    Self::Other
                }
            }
            (15, b's') => {
                if name.eq_ignore_ascii_case(b"Session-Expires") {
                    Self::SessionExpires
                } else {
                    Self::Other
                }
            }
            (16, b'c') => {
                if name.eq_ignore_ascii_case(b"Content-Encoding") {
                    Self::ContentEncoding
                } else {
                    Self::Other
                }
            }
            (16, b'w') => {
                if name.eq_ignore_ascii_case(b"WWW-Authenticate") {
                    Self::WwwAuthenticate
                } else {
                    Self::Other
                }
            }
            (18, b'p') => {
                if name.eq_ignore_ascii_case(b"Proxy-Authenticate") {
                    Self::ProxyAuthenticate
                } else {
                    Self::Other
                }
            }
            (19, b'a') => {
                if name.eq_ignore_ascii_case(b"Authentication-Info") {
                    Self::AuthenticationInfo
                } else {
                    Self::Other
                }
            }
            (19, b'c') => {
                if name.eq_ignore_ascii_case(b"Content-Disposition") {
                    Self::ContentDisposition
                } else {
                    Self::Other
                }
            }
            (19, b'p') => {
                if name.eq_ignore_ascii_case(b"Proxy-Authorization") {
                    Self::ProxyAuthorization
                } else if name.eq_ignore_ascii_case(b"P-Asserted-Identity") {
                    Self::PAssertedIdentity
                } else {
                    Self::Other
                }
            }
            (20, b'p') => {
                if name.eq_ignore_ascii_case(b"P-Preferred-Identity") {
                    Self::PPreferredIdentity
                } else {
                    Self::Other
                }
            }
            _ => Self::Other,
        }
    }

    /// Headers whose value is a comma-separated list that may also be split over several header
    /// lines (RFC 3261 §7.3.1). WWW-Authenticate and friends are *not* lists: their commas separate
    /// parameters of one challenge.
    pub const fn is_list(self) -> bool {
        matches!(
            self,
            Self::Via
                | Self::Contact
                | Self::Route
                | Self::RecordRoute
                | Self::Allow
                | Self::Supported
                | Self::Require
                | Self::ProxyRequire
                | Self::Unsupported
                | Self::Accept
                | Self::AllowEvents
                | Self::ContentEncoding
                | Self::Reason
                | Self::Warning
                | Self::PAssertedIdentity
                | Self::PPreferredIdentity
                | Self::Diversion
        )
    }

    /// Headers that may appear at most once in a message (RFC 3261 §20, Table 2).
    pub const fn is_single(self) -> bool {
        matches!(
            self,
            Self::From
                | Self::To
                | Self::CallId
                | Self::CSeq
                | Self::MaxForwards
                | Self::ContentType
                | Self::Expires
                | Self::MinExpires
                | Self::RSeq
                | Self::RAck
                | Self::SessionExpires
                | Self::MinSe
        )
    }
}

impl fmt::Display for HeaderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One header line as parsed: borrowed name and value, plus the recognised kind.
///
/// `value` has leading and trailing white space removed; a folded value (RFC 3261 §7.3.1) keeps
/// its inner CRLF + WSP, which every typed view treats as white space.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Header<'b> {
    /// The name exactly as received.
    pub name: &'b [u8],
    /// The kind, recognised once at parse time so lookups cost a byte compare.
    pub kind: HeaderKind,
    /// The value exactly as received, trimmed.
    pub value: &'b [u8],
}

/// An unused header slot, to initialise the caller's header array: `[EMPTY_HEADER; 64]`.
pub const EMPTY_HEADER: Header<'static> = Header {
    name: b"",
    kind: HeaderKind::Other,
    value: b"",
};

impl fmt::Debug for Header<'_> {
    /// Credentials never reach a log: Authorization values are redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = if matches!(
            self.kind,
            HeaderKind::Authorization | HeaderKind::ProxyAuthorization
        ) {
            std::borrow::Cow::Borrowed("<redacted>")
        } else {
            String::from_utf8_lossy(self.value)
        };
        write!(f, "{}: {}", String::from_utf8_lossy(self.name), value)
    }
}

#[cfg(test)]
mod tests {
    use super::HeaderKind as K;
    use super::ALL;

    #[test]
    fn names_match_case_insensitively_and_compact() {
        assert_eq!(K::from_name(b"via"), K::Via);
        assert_eq!(K::from_name(b"V"), K::Via);
        assert_eq!(K::from_name(b"cAlL-iD"), K::CallId);
        assert_eq!(K::from_name(b"i"), K::CallId);
        for (c, k) in [
            (b'm', K::Contact),
            (b'f', K::From),
            (b't', K::To),
            (b'l', K::ContentLength),
            (b'c', K::ContentType),
            (b'k', K::Supported),
            (b's', K::Subject),
            (b'e', K::ContentEncoding),
            (b'o', K::Event),
            (b'r', K::ReferTo),
            (b'u', K::AllowEvents),
            (b'x', K::SessionExpires),
            (b'b', K::ReferredBy),
            (b'y', K::Identity),
        ] {
            assert_eq!(K::from_name(&[c]), k);
            assert_eq!(K::from_name(&[c.to_ascii_uppercase()]), k);
        }
        assert_eq!(K::from_name(b"C%6Fntact"), K::Other);
        for k in ALL {
            assert_eq!(K::from_name(k.as_str().as_bytes()), *k, "{k}");
            assert_eq!(
                K::from_name(k.as_str().to_ascii_lowercase().as_bytes()),
                *k,
                "{k}"
            );
            assert_eq!(
                K::from_name(k.as_str().to_ascii_uppercase().as_bytes()),
                *k,
                "{k}"
            );
        }
        assert_eq!(K::from_name(b"X-Trunk-Key"), K::Other);
        assert_eq!(K::from_name(b"q"), K::Other);
    }
}
