//! The SIP transports on real loopback sockets (127.0.0.1 and ::1 only): UDP, TCP framing,
//! connection reuse and errors, idle timeout, keep-alives, TLS both ways. Every wait is bounded.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sbc_config::net::{Listener, Transport};
use sbc_config::TlsFiles;
use sbcd::transport::{
    client_config, load_server_config, AddrFamily, BindError, Inbound, Outbound, TlsSetup,
    TransportError, TransportErrorKind, TransportOptions, Transports,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep, timeout, Instant};

/// Bound on every wait for something that should happen.
const WAIT: Duration = Duration::from_secs(10);
/// How long to watch for something that should not happen.
const QUIET: Duration = Duration::from_millis(300);

/// A running [`Transports`] with its inbound messages and errors as channels.
struct Harness {
    transports: Transports,
    inbound: mpsc::UnboundedReceiver<Inbound>,
    errors: mpsc::UnboundedReceiver<TransportError>,
    shutdown: watch::Sender<bool>,
}

impl Harness {
    async fn start(listeners: &[&str], tls: TlsSetup, opts: TransportOptions) -> Self {
        Self::try_start(listeners, tls, opts)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    async fn try_start(
        listeners: &[&str],
        tls: TlsSetup,
        opts: TransportOptions,
    ) -> Result<Self, BindError> {
        let listeners: Vec<Listener> = listeners
            .iter()
            .map(|l| l.parse().expect("listener"))
            .collect();
        let (in_tx, inbound) = mpsc::unbounded_channel();
        let (err_tx, errors) = mpsc::unbounded_channel();
        let (shutdown, shutdown_rx) = watch::channel(false);
        let transports = Transports::bind(
            &listeners,
            tls,
            opts,
            Arc::new(move |m| {
                let _ = in_tx.send(m);
            }),
            Arc::new(move |e| {
                let _ = err_tx.send(e);
            }),
            shutdown_rx,
        )
        .await?;
        Ok(Self {
            transports,
            inbound,
            errors,
            shutdown,
        })
    }

    fn addr(&self, transport: Transport, family: AddrFamily) -> SocketAddr {
        self.transports
            .local_addr(transport, family)
            .expect("bound listener")
    }

    async fn next_inbound(&mut self) -> Inbound {
        next(&mut self.inbound).await
    }

    async fn next_error(&mut self) -> TransportError {
        next(&mut self.errors).await
    }

    /// No inbound message for a while.
    async fn no_inbound(&mut self) {
        if let Ok(m) = timeout(QUIET, self.inbound.recv()).await {
            panic!("unexpected inbound message: {m:?}");
        }
    }
}

async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> T {
    timeout(WAIT, rx.recv())
        .await
        .expect("timed out waiting")
        .expect("channel closed")
}

fn opts() -> TransportOptions {
    TransportOptions::default()
}

/// A request with a body; `tag` makes it unique.
fn request(tag: &str, body: &str) -> Vec<u8> {
    format!(
        "OPTIONS sip:{tag}@sbc.test SIP/2.0\r\n\
         Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK{tag}\r\n\
         Call-ID: {tag}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn outbound(transport: Transport, dest: SocketAddr, data: &[u8], token: u64) -> Outbound {
    Outbound::new(transport, dest, Bytes::copy_from_slice(data), token)
}

/// Reads exactly `n` bytes.
async fn read_n<S: AsyncRead + Unpin>(stream: &mut S, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    timeout(WAIT, stream.read_exact(&mut buf))
        .await
        .expect("timed out reading")
        .expect("read");
    buf
}

/// Waits until the peer closes the connection (EOF or reset), discarding anything sent.
async fn expect_closed<S: AsyncRead + Unpin>(stream: &mut S) {
    let mut buf = [0u8; 1024];
    let closed = timeout(WAIT, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    });
    closed.await.expect("connection still open");
}

/// A port on `ip` with nothing listening (bound, then released).
async fn closed_port(ip: &str) -> SocketAddr {
    let l = TcpListener::bind((ip, 0)).await.expect("bind");
    l.local_addr().expect("local addr")
}

// === UDP ===

async fn udp_round_trip(ip: &str) {
    let family = if ip.contains(':') {
        AddrFamily::V6
    } else {
        AddrFamily::V4
    };
    let listener = format!("udp:{}", SocketAddr::new(ip.parse().unwrap(), 0));
    let mut h = Harness::start(&[&listener], TlsSetup::default(), opts()).await;
    let sbc = h.addr(Transport::Udp, family);
    assert_ne!(sbc.port(), 0, "port 0 resolved");

    let peer = UdpSocket::bind((ip, 0)).await.expect("peer bind");
    let peer_addr = peer.local_addr().unwrap();
    // Keep-alives and empty datagrams are dropped, not delivered.
    peer.send_to(b"\r\n\r\n", sbc).await.unwrap();
    peer.send_to(b"", sbc).await.unwrap();
    let msg = request("udp1", "v=0\r\n");
    peer.send_to(&msg, sbc).await.unwrap();
    let m = h.next_inbound().await;
    assert_eq!(&m.data[..], &msg[..]);
    assert_eq!(m.source, peer_addr);
    assert_eq!(m.local, sbc);
    assert_eq!(m.transport, Transport::Udp);
    assert!(m.conn.is_some(), "UDP names its socket");
    assert_eq!(h.transports.stats().udp_keepalives_dropped, 2);

    // A response on the socket the request came in on, then a request by address only.
    let mut resp = outbound(Transport::Udp, m.source, b"SIP/2.0 200 OK\r\n\r\n", 1);
    resp.conn = m.conn;
    h.transports.send(resp);
    h.transports
        .send(outbound(Transport::Udp, peer_addr, &request("udp2", ""), 2));
    let mut buf = vec![0u8; 65_536];
    for expected in [&b"SIP/2.0 200 OK\r\n\r\n"[..], &request("udp2", "")] {
        let (len, from) = timeout(WAIT, peer.recv_from(&mut buf))
            .await
            .expect("timed out")
            .unwrap();
        assert_eq!(&buf[..len], expected);
        assert_eq!(from, sbc);
    }
    h.no_inbound().await;
}

#[tokio::test]
async fn udp_receive_and_send_ipv4() {
    udp_round_trip("127.0.0.1").await;
}

#[tokio::test]
async fn udp_receive_and_send_ipv6() {
    udp_round_trip("::1").await;
}

#[tokio::test]
async fn udp_send_without_a_socket_of_that_family_reports_the_token() {
    let mut h = Harness::start(&["udp:127.0.0.1:0"], TlsSetup::default(), opts()).await;
    let dest: SocketAddr = "[::1]:5060".parse().unwrap();
    h.transports.send(outbound(Transport::Udp, dest, b"x", 31));
    let e = h.next_error().await;
    assert_eq!(
        (e.token, e.dest, e.transport, e.kind),
        (31, dest, Transport::Udp, TransportErrorKind::NoListener)
    );
}

// === TCP framing ===

#[tokio::test]
async fn tcp_frames_two_messages_in_one_write_and_one_split_across_writes() {
    let mut h = Harness::start(&["tcp:127.0.0.1:0"], TlsSetup::default(), opts()).await;
    let sbc = h.addr(Transport::Tcp, AddrFamily::V4);
    let mut peer = TcpStream::connect(sbc).await.unwrap();
    let peer_addr = peer.local_addr().unwrap();

    let (m1, m2) = (request("a", "first body"), request("b", ""));
    peer.write_all(&[m1.clone(), m2.clone()].concat())
        .await
        .unwrap();
    let first = h.next_inbound().await;
    let second = h.next_inbound().await;
    assert_eq!(&first.data[..], &m1[..]);
    assert_eq!(&second.data[..], &m2[..]);
    assert_eq!(first.source, peer_addr);
    assert_eq!(first.local, sbc);
    assert_eq!(first.transport, Transport::Tcp);
    assert!(first.conn.is_some());
    assert_eq!(first.conn, second.conn);

    // One message in pieces: mid start line, mid header, mid body; a stray CRLF before it.
    let m3 = request("c", "0123456789");
    let cuts = [0, 2, 9, 40, m3.len() - 4, m3.len()];
    peer.write_all(b"\r\n").await.unwrap();
    for w in cuts.windows(2) {
        peer.write_all(&m3[w[0]..w[1]]).await.unwrap();
        sleep(Duration::from_millis(20)).await;
    }
    let third = h.next_inbound().await;
    assert_eq!(&third.data[..], &m3[..]);
    assert_eq!(third.conn, first.conn);
    h.no_inbound().await;
    assert_eq!(h.transports.stats().framing_errors, 0);
}

#[tokio::test]
async fn tcp_garbage_or_oversized_input_closes_the_connection() {
    let mut o = opts();
    o.limits.max_header_bytes = 1024;
    o.limits.max_body_bytes = 4096;
    let mut h = Harness::start(&["tcp:127.0.0.1:0"], TlsSetup::default(), o).await;
    let sbc = h.addr(Transport::Tcp, AddrFamily::V4);
    let oversized_headers = format!(
        "OPTIONS sip:x@sbc.test SIP/2.0\r\nX-Pad: {}\r\n",
        "a".repeat(2000)
    );
    let inputs: [&[u8]; 4] = [
        b"HELLO\r\nno colon here\r\n\r\n",
        b"OPTIONS sip:x@sbc.test SIP/2.0\r\nCall-ID: no-length\r\n\r\n",
        b"OPTIONS sip:x@sbc.test SIP/2.0\r\nContent-Length: 100000\r\n\r\n",
        oversized_headers.as_bytes(),
    ];
    for (i, input) in inputs.iter().enumerate() {
        let mut peer = TcpStream::connect(sbc).await.unwrap();
        peer.write_all(input).await.unwrap();
        expect_closed(&mut peer).await;
        assert_eq!(
            h.transports.stats().framing_errors,
            i as u64 + 1,
            "input {i}"
        );
    }
    h.no_inbound().await;
    // The listener still serves well-formed peers.
    let mut peer = TcpStream::connect(sbc).await.unwrap();
    peer.write_all(&request("ok", "")).await.unwrap();
    assert_eq!(&h.next_inbound().await.data[..], &request("ok", "")[..]);
}

#[tokio::test]
async fn tcp_keepalive_ping_gets_a_pong() {
    let mut h = Harness::start(&["tcp:127.0.0.1:0"], TlsSetup::default(), opts()).await;
    let sbc = h.addr(Transport::Tcp, AddrFamily::V4);
    let mut peer = TcpStream::connect(sbc).await.unwrap();
    peer.write_all(b"\r\n\r\n").await.unwrap();
    assert_eq!(read_n(&mut peer, 2).await, b"\r\n");
    // A ping split in two halves is still one ping.
    peer.write_all(b"\r\n").await.unwrap();
    sleep(Duration::from_millis(50)).await;
    peer.write_all(b"\r\n").await.unwrap();
    assert_eq!(read_n(&mut peer, 2).await, b"\r\n");
    // Messages still flow after pings.
    peer.write_all(&request("after-ping", "")).await.unwrap();
    assert_eq!(
        &h.next_inbound().await.data[..],
        &request("after-ping", "")[..]
    );
    assert_eq!(h.transports.stats().keepalives_answered, 2);
}

// === TCP connections ===

#[tokio::test]
async fn tcp_response_goes_back_on_the_connection_of_the_request() {
    let mut h = Harness::start(&["tcp:127.0.0.1:0"], TlsSetup::default(), opts()).await;
    let sbc = h.addr(Transport::Tcp, AddrFamily::V4);
    let mut a = TcpStream::connect(sbc).await.unwrap();
    let mut b = TcpStream::connect(sbc).await.unwrap();
    a.write_all(&request("from-a", "")).await.unwrap();
    let from_a = h.next_inbound().await;
    b.write_all(&request("from-b", "")).await.unwrap();
    let from_b = h.next_inbound().await;
    assert_ne!(from_a.conn, from_b.conn);

    for (m, stream, token) in [(&from_b, &mut b, 1), (&from_a, &mut a, 2)] {
        let body = format!(
            "SIP/2.0 200 OK\r\nX-To: {}\r\nContent-Length: 0\r\n\r\n",
            token
        );
        let mut resp = outbound(Transport::Tcp, m.source, body.as_bytes(), token);
        resp.conn = m.conn;
        h.transports.send(resp);
        assert_eq!(read_n(stream, body.len()).await, body.as_bytes());
    }
}

async fn tcp_outbound_reuse(ip: &str) {
    let mut h = Harness::start(&[], TlsSetup::default(), opts()).await;
    let peer = TcpListener::bind((ip, 0)).await.unwrap();
    let dest = peer.local_addr().unwrap();
    let (m1, m2, m3) = (request("o1", "x"), request("o2", ""), request("o3", ""));
    // Back to back: the second waits in the queue of the connection being opened.
    h.transports.send(outbound(Transport::Tcp, dest, &m1, 1));
    h.transports.send(outbound(Transport::Tcp, dest, &m2, 2));
    let (mut stream, _) = timeout(WAIT, peer.accept()).await.unwrap().unwrap();
    assert_eq!(
        read_n(&mut stream, m1.len() + m2.len()).await,
        [m1, m2].concat()
    );
    // The peer's request comes in on that connection.
    let back = request("from-peer", "");
    stream.write_all(&back).await.unwrap();
    let m = h.next_inbound().await;
    assert_eq!(&m.data[..], &back[..]);
    assert_eq!(m.source, dest);
    assert_eq!(m.transport, Transport::Tcp);
    // Later sends by address reuse it too.
    h.transports.send(outbound(Transport::Tcp, dest, &m3, 3));
    assert_eq!(read_n(&mut stream, m3.len()).await, m3);
    assert!(
        timeout(QUIET, peer.accept()).await.is_err(),
        "a second connection was opened"
    );
    let stats = h.transports.stats();
    assert_eq!((stats.connections_opened, stats.connections_open), (1, 1));
    assert!(h.errors.try_recv().is_err());
}

#[tokio::test]
async fn tcp_outbound_sends_reuse_one_connection_ipv4() {
    tcp_outbound_reuse("127.0.0.1").await;
}

#[tokio::test]
async fn tcp_outbound_sends_reuse_one_connection_ipv6() {
    tcp_outbound_reuse("::1").await;
}

#[tokio::test]
async fn tcp_connect_failure_reports_every_queued_token() {
    let mut h = Harness::start(&[], TlsSetup::default(), opts()).await;
    let dest = closed_port("127.0.0.1").await;
    h.transports
        .send(outbound(Transport::Tcp, dest, &request("x", ""), 77));
    h.transports
        .send(outbound(Transport::Tcp, dest, &request("y", ""), 78));
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let e = h.next_error().await;
        assert_eq!((e.dest, e.transport), (dest, Transport::Tcp));
        assert_eq!(
            e.kind,
            TransportErrorKind::ConnectFailed(std::io::ErrorKind::ConnectionRefused)
        );
        tokens.push(e.token);
    }
    tokens.sort_unstable();
    assert_eq!(tokens, [77, 78]);
    assert_eq!(h.transports.stats().connections_open, 0);
    // TLS without a client configuration cannot connect at all.
    h.transports.send(outbound(Transport::Tls, dest, b"x", 79));
    let e = h.next_error().await;
    assert_eq!((e.token, e.kind), (79, TransportErrorKind::NoListener));
    assert_eq!(
        e.to_string(),
        format!(
            "send tls:{dest} (token 79): no local socket for this transport and address family"
        )
    );
}

#[tokio::test]
async fn tcp_idle_connection_is_closed() {
    let mut o = opts();
    o.tcp_idle_timeout = Duration::from_millis(300);
    let mut h = Harness::start(&["tcp:[::1]:0"], TlsSetup::default(), o).await;
    let sbc = h.addr(Transport::Tcp, AddrFamily::V6);
    let mut peer = TcpStream::connect(sbc).await.unwrap();
    peer.write_all(&request("idle", "")).await.unwrap();
    h.next_inbound().await;
    let quiet_since = Instant::now();
    expect_closed(&mut peer).await;
    assert!(quiet_since.elapsed() >= Duration::from_millis(250));
    let stats = h.transports.stats();
    assert_eq!((stats.idle_closes, stats.connections_open), (1, 0));
}

#[tokio::test]
async fn tcp_connections_over_the_limit_are_refused() {
    let mut o = opts();
    o.max_connections = 1;
    let mut h = Harness::start(&["tcp:127.0.0.1:0"], TlsSetup::default(), o).await;
    let sbc = h.addr(Transport::Tcp, AddrFamily::V4);
    let mut first = TcpStream::connect(sbc).await.unwrap();
    first.write_all(&request("first", "")).await.unwrap();
    h.next_inbound().await;
    let mut second = TcpStream::connect(sbc).await.unwrap();
    expect_closed(&mut second).await;
    assert_eq!(h.transports.stats().connections_refused, 1);
    // Outbound connections count too.
    let dest = closed_port("127.0.0.1").await;
    h.transports.send(outbound(Transport::Tcp, dest, b"x", 5));
    let e = h.next_error().await;
    assert_eq!(
        (e.token, e.kind),
        (5, TransportErrorKind::TooManyConnections)
    );
}

#[tokio::test]
async fn connections_per_source_are_capped_and_freed_on_close() {
    let mut o = opts();
    o.max_connections_per_source = 2;
    let mut h = Harness::start(&["tcp:127.0.0.1:0"], TlsSetup::default(), o).await;
    let sbc = h.addr(Transport::Tcp, AddrFamily::V4);
    let mut a = TcpStream::connect(sbc).await.unwrap();
    a.write_all(&request("a", "")).await.unwrap();
    h.next_inbound().await;
    let mut b = TcpStream::connect(sbc).await.unwrap();
    b.write_all(&request("b", "")).await.unwrap();
    h.next_inbound().await;
    let mut third = TcpStream::connect(sbc).await.unwrap();
    expect_closed(&mut third).await;
    assert_eq!(h.transports.stats().connections_refused, 1);
    // Another source is not affected.
    let other = tokio::net::TcpSocket::new_v4().unwrap();
    other.bind("127.0.0.7:0".parse().unwrap()).unwrap();
    let mut other = other.connect(sbc).await.unwrap();
    other.write_all(&request("o", "")).await.unwrap();
    h.next_inbound().await;
    // A closed connection frees its place.
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut again = TcpStream::connect(sbc).await.unwrap();
        again.write_all(&request("again", "")).await.unwrap();
        if timeout(Duration::from_millis(300), h.next_inbound())
            .await
            .is_ok()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the freed place was never given back"
        );
    }
}

/// Slow-loris: a message that trickles in byte by byte is cut off `message_timeout` after its
/// first byte, even though bytes keep arriving (the idle timeout never fires).
#[tokio::test]
async fn a_message_that_never_completes_is_cut_off() {
    let mut o = opts();
    o.message_timeout = Duration::from_millis(400);
    let h = Harness::start(&["tcp:127.0.0.1:0"], TlsSetup::default(), o).await;
    let sbc = h.addr(Transport::Tcp, AddrFamily::V4);
    let mut peer = TcpStream::connect(sbc).await.unwrap();
    let msg = request("slow", "");
    let started = Instant::now();
    let mut closed = false;
    for &byte in msg.iter().take(msg.len() - 4) {
        if peer.write_all(&[byte]).await.is_err() {
            closed = true;
            break;
        }
        sleep(Duration::from_millis(20)).await;
        if started.elapsed() > Duration::from_secs(5) {
            break;
        }
    }
    if !closed {
        expect_closed(&mut peer).await;
    }
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(400), "{elapsed:?}");
    assert_eq!(h.transports.stats().slow_message_closes, 1);
}

#[tokio::test]
async fn shutdown_closes_connections() {
    let mut h = Harness::start(&["tcp:127.0.0.1:0"], TlsSetup::default(), opts()).await;
    let sbc = h.addr(Transport::Tcp, AddrFamily::V4);
    let mut peer = TcpStream::connect(sbc).await.unwrap();
    peer.write_all(&request("s", "")).await.unwrap();
    h.next_inbound().await;
    h.shutdown.send_replace(true);
    expect_closed(&mut peer).await;
}

// === Binding ===

#[tokio::test]
async fn local_addr_reports_what_was_bound() {
    let h = Harness::start(
        &["udp:127.0.0.1:0", "udp:[::1]:0", "tcp:127.0.0.1:0"],
        TlsSetup::default(),
        opts(),
    )
    .await;
    let udp4 = h.addr(Transport::Udp, AddrFamily::V4);
    let udp6 = h.addr(Transport::Udp, AddrFamily::V6);
    let tcp4 = h.addr(Transport::Tcp, AddrFamily::V4);
    assert_eq!(udp4.ip().to_string(), "127.0.0.1");
    assert_eq!(udp6.ip().to_string(), "::1");
    assert!(udp4.port() != 0 && udp6.port() != 0 && tcp4.port() != 0);
    assert_eq!(
        h.transports.local_addr(Transport::Tcp, AddrFamily::V6),
        None
    );
    assert_eq!(
        h.transports.local_addr(Transport::Tls, AddrFamily::V4),
        None
    );
    let bound: Vec<String> = h.transports.bound().iter().map(|l| l.to_string()).collect();
    assert_eq!(
        bound,
        [
            format!("udp:{udp4}"),
            format!("udp:{udp6}"),
            format!("tcp:{tcp4}")
        ]
    );
}

#[tokio::test]
async fn bind_errors_name_the_listener() {
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let busy = udp.local_addr().unwrap();
    let err = Harness::try_start(&[&format!("udp:{busy}")], TlsSetup::default(), opts())
        .await
        .err()
        .expect("port in use");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("bind udp:{busy}: ")) && text.contains("in use"),
        "{text}"
    );

    let tcp = std::net::TcpListener::bind("[::1]:0").unwrap();
    let busy = tcp.local_addr().unwrap();
    let err = Harness::try_start(&[&format!("tcp:{busy}")], TlsSetup::default(), opts())
        .await
        .err()
        .expect("port in use");
    assert!(
        err.to_string().starts_with(&format!("bind tcp:{busy}: ")),
        "{err}"
    );

    let err = Harness::try_start(&["tls:127.0.0.1:0"], TlsSetup::default(), opts())
        .await
        .err()
        .expect("no certificate");
    assert!(matches!(err, BindError::NoTlsServerConfig { .. }), "{err}");
    assert!(err.to_string().starts_with("bind tls:127.0.0.1:0: "));
}

// === TLS ===

/// A scratch directory for PEM files.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("transport")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A self-signed certificate for localhost, 127.0.0.1 and ::1, written as PEM files.
fn self_signed(dir: &std::path::Path) -> TlsFiles {
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let ck = rcgen::generate_simple_self_signed(names).expect("rcgen");
    let files = TlsFiles {
        cert_file: dir.join("cert.pem"),
        key_file: dir.join("key.pem"),
    };
    std::fs::write(&files.cert_file, ck.cert.pem()).unwrap();
    std::fs::write(&files.key_file, ck.signing_key.serialize_pem()).unwrap();
    files
}

async fn tls_round_trip(ip: &str, dir: &str) {
    let files = self_signed(&scratch(dir));
    let server = load_server_config(&files).expect("server config");
    let client = client_config(Some(&files.cert_file)).expect("client config");
    let tls = TlsSetup {
        server: Some(server.clone()),
        client: Some(client.clone()),
    };
    let listener = format!("tls:{}", SocketAddr::new(ip.parse().unwrap(), 0));
    let mut h = Harness::start(&[&listener], tls, opts()).await;
    let family = if ip.contains(':') {
        AddrFamily::V6
    } else {
        AddrFamily::V4
    };
    let sbc = h.addr(Transport::Tls, family);

    // Inbound: a TLS client sends a request and gets the response on its connection.
    let connector = tokio_rustls::TlsConnector::from(client);
    let name = rustls::pki_types::ServerName::IpAddress(sbc.ip().into());
    let tcp = TcpStream::connect(sbc).await.unwrap();
    let mut peer = timeout(WAIT, connector.connect(name, tcp))
        .await
        .unwrap()
        .expect("handshake");
    let req = request("tls-in", "body");
    peer.write_all(&req).await.unwrap();
    let m = h.next_inbound().await;
    assert_eq!(&m.data[..], &req[..]);
    assert_eq!(m.transport, Transport::Tls);
    let resp = b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n";
    let mut out = outbound(Transport::Tls, m.source, resp, 1);
    out.conn = m.conn;
    h.transports.send(out);
    assert_eq!(read_n(&mut peer, resp.len()).await, resp);
    // Pings work under TLS too.
    peer.write_all(b"\r\n\r\n").await.unwrap();
    assert_eq!(read_n(&mut peer, 2).await, b"\r\n");

    // Outbound: sbcd connects to a TLS server, verifying its certificate by IP address.
    let peer_listener = TcpListener::bind((ip, 0)).await.unwrap();
    let dest = peer_listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(server);
    let out_req = request("tls-out", "");
    h.transports
        .send(outbound(Transport::Tls, dest, &out_req, 2));
    let (tcp, _) = timeout(WAIT, peer_listener.accept())
        .await
        .unwrap()
        .unwrap();
    let mut served = timeout(WAIT, acceptor.accept(tcp))
        .await
        .unwrap()
        .expect("handshake");
    assert_eq!(read_n(&mut served, out_req.len()).await, out_req);
    let back = request("tls-back", "");
    served.write_all(&back).await.unwrap();
    let m = h.next_inbound().await;
    assert_eq!(
        (&m.data[..], m.source, m.transport),
        (&back[..], dest, Transport::Tls)
    );

    // A name the certificate does not carry fails verification, reported with the token.
    let other = TcpListener::bind((ip, 0)).await.unwrap();
    let other_dest = other.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(load_server_config(&files).unwrap());
    let server_side = tokio::spawn(async move {
        if let Ok((tcp, _)) = other.accept().await {
            let _ = acceptor.accept(tcp).await;
        }
    });
    let mut wrong = outbound(Transport::Tls, other_dest, b"x", 3);
    wrong.server_name = Some(Arc::from("wrong.example"));
    h.transports.send(wrong);
    let e = h.next_error().await;
    assert_eq!((e.token, e.dest), (3, other_dest));
    assert!(
        matches!(e.kind, TransportErrorKind::ConnectFailed(_)),
        "{e}"
    );
    let _ = timeout(WAIT, server_side).await;
}

#[tokio::test]
async fn tls_round_trip_ipv4() {
    tls_round_trip("127.0.0.1", "tls4").await;
}

#[tokio::test]
async fn tls_round_trip_ipv6() {
    tls_round_trip("::1", "tls6").await;
}

#[test]
fn tls_setup_errors_name_the_file() {
    let dir = scratch("tls-errors");
    let good = self_signed(&dir);
    let missing = dir.join("missing.pem");
    let err = load_server_config(&TlsFiles {
        cert_file: missing.clone(),
        key_file: good.key_file.clone(),
    })
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("{}: cannot read: ", missing.display())),
        "{err}"
    );

    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let err = load_server_config(&TlsFiles {
        cert_file: garbage.clone(),
        key_file: good.key_file.clone(),
    })
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: no certificate found (expected -----BEGIN CERTIFICATE-----)",
            garbage.display()
        )
    );

    // The certificate file given as the key.
    let err = load_server_config(&TlsFiles {
        cert_file: good.cert_file.clone(),
        key_file: good.cert_file.clone(),
    })
    .unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "{}: no private key found",
            good.cert_file.display()
        )),
        "{err}"
    );

    // A key that belongs to another certificate.
    let other = self_signed(&scratch("tls-errors-other"));
    let err = load_server_config(&TlsFiles {
        cert_file: good.cert_file.clone(),
        key_file: other.key_file.clone(),
    })
    .unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "{} with {}: ",
            good.cert_file.display(),
            other.key_file.display()
        )),
        "{err}"
    );

    let err = client_config(Some(&garbage)).unwrap_err();
    assert!(
        err.to_string().starts_with(&garbage.display().to_string()),
        "{err}"
    );
    assert!(client_config(Some(&good.cert_file)).is_ok());
}
