//! One leg of a call: the dialog state of RFC 3261 §12 and where its messages go.

use std::net::SocketAddr;

use sbc_config::net::Transport;
use sip_txn::Reliability;

/// Where a leg's messages go: an address, a transport and, for streams, a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Peer {
    pub(crate) addr: SocketAddr,
    pub(crate) transport: Transport,
    pub(crate) conn: Option<u64>,
}

impl Peer {
    pub(crate) fn reliability(&self) -> Reliability {
        match self.transport {
            Transport::Udp => Reliability::Unreliable,
            Transport::Tcp | Transport::Tls => Reliability::Reliable,
        }
    }
}

/// The dialog state of one leg (§12.1.1 for the UAS side A, §12.1.2 for the UAC side B).
///
/// `local_uri` and `remote_uri` are name-addr values without their tag, exactly as this leg's
/// requests write them in From and To.
#[derive(Debug)]
pub(crate) struct Leg {
    pub(crate) call_id: Box<[u8]>,
    pub(crate) local_tag: Box<[u8]>,
    /// Unknown on side B until the first response with a To tag (early or confirmed dialog).
    pub(crate) remote_tag: Option<Box<[u8]>>,
    pub(crate) local_uri: Box<[u8]>,
    pub(crate) remote_uri: Box<[u8]>,
    /// The CSeq of the last request sbcd sent on this leg.
    pub(crate) local_seq: u32,
    /// The CSeq of the last request received on this leg (§12.2.2: lower is a 500).
    pub(crate) remote_seq: Option<u32>,
    /// The remote target: the Request-URI of in-dialog requests (the peer's Contact).
    pub(crate) target: Box<[u8]>,
    /// The route set, as Route header values in the order they are written.
    pub(crate) routes: Vec<Box<[u8]>>,
    /// Where in-dialog requests and, on side A, responses go.
    pub(crate) peer: Peer,
    /// A BYE was sent or received: nothing more is sent on this leg but responses.
    pub(crate) ended: bool,
    /// The dialog is confirmed (a 2xx was sent or received on this leg).
    pub(crate) confirmed: bool,
    /// The challenges the peer sent on this leg; later requests carry credentials at once.
    pub(crate) auth: Option<crate::auth::Answered>,
}

impl Leg {
    /// The next CSeq for a new request (§12.2.1.1: incremented by one each time).
    pub(crate) fn next_seq(&mut self) -> u32 {
        self.local_seq = self.local_seq.wrapping_add(1);
        self.local_seq
    }
}
