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

        impl HeaderKind {
            /// The canonical spelling of the header name, as the writer emits it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( Self::$kind => $name, )*
                    Self::Other => "Other",
                }
            }

            /// Recognises a header name: full form case-insensitively, or a compact form
            /// (RFC 3261 §7.3.3 and later RFCs: i m f t v l c k s e o r u x b y).
            pub fn from_name(name: &[u8]) -> Self {
                if name.len() == 1 {
                    return match name[0].to_ascii_lowercase() {
                        $( $( $compact => Self::$kind, )? )*
                        _ => Self::Other,
                    };
                }
                $(
                    if name.len() == $name.len() && name.eq_ignore_ascii_case($name.as_bytes()) {
                        return Self::$kind;
                    }
                )*
                Self::Other
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
        assert_eq!(K::from_name(b"X-Trunk-Key"), K::Other);
        assert_eq!(K::from_name(b"q"), K::Other);
    }
}
