#!/usr/bin/env python3
"""Generates the carrier traffic corpus: one SIP message per `.sip` file, byte-exact.

The messages imitate what real trunks and PBXs put on the wire (Cisco CUBE, Asterisk PJSIP,
FreeSWITCH mod_sofia, a carrier's proxy and registrar) with documentation addresses
(192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32) and example domains.
Lines end in CRLF, SDP lines too, and Content-Length is computed here, so editing a message
means editing this script and re-running it:

    python3 crates/sip-codec/tests/carrier/make.py          # (re)write every .sip file
    python3 crates/sip-codec/tests/carrier/make.py --check  # exit 1 if a file differs

Roles in the corpus: the SBC's outbound address is 203.0.113.5, its inbound (PBX-facing) side
is reached at 203.0.113.5 too; PBXs sit at 192.0.2.10 (CUBE), 198.51.100.20 (Asterisk) and
203.0.113.30 (FreeSWITCH); the carrier's proxies are 198.51.100.60/61 and its media gateway
198.51.100.70/71.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CRLF = "\r\n"


def sdp(*lines):
    """An SDP body: every line CRLF-terminated (RFC 8866 §5)."""
    return "".join(line + CRLF for line in lines)


def message(start, headers, body=""):
    """Start line, headers, a computed Content-Length (last header), empty line, body.

    A header given as ("name", None) is the Content-Length slot: the length is written there
    under that exact name (for the compact `l:` form); otherwise `Content-Length` is appended.
    """
    body_bytes = body.encode("ascii")
    out = [start]
    wrote_length = False
    for h in headers:
        if isinstance(h, tuple):
            name, _ = h
            out.append("%s: %d" % (name, len(body_bytes)))
            wrote_length = True
        else:
            out.append(h)
    if not wrote_length:
        out.append("Content-Length: %d" % len(body_bytes))
    head = CRLF.join(out) + CRLF + CRLF
    return head.encode("ascii") + body_bytes


AUDIO_G711 = (
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-16",
)

CORPUS = {}

# Cisco CUBE (IOS-XE 15.x/16.x) sending a call towards the SBC's carrier trunk. CUBE writes
# Remote-Party-ID before From, Min-SE with two spaces, a Cisco-Guid, Timestamp and Expires.
CORPUS["invite-cube.sip"] = message(
    "INVITE sip:+12125551234@203.0.113.5:5060 SIP/2.0",
    [
        "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK1A2B3C4D5;rport",
        'Remote-Party-ID: "Front Desk" <sip:+13125550100@192.0.2.10>;party=calling;screen=yes;privacy=off',
        'From: "Front Desk" <sip:+13125550100@192.0.2.10>;tag=5F3A1C-2B7',
        "To: <sip:+12125551234@203.0.113.5>",
        "Call-ID: 8C2A1F00-D1B211EF-8E3FA4B2-1C9D0E77@192.0.2.10",
        "Supported: timer,resource-priority,replaces,sdp-anat",
        "Min-SE:  1800",
        "Cisco-Guid: 2345678901-3520467439-2386271410-0479268471",
        "User-Agent: Cisco-SIPGateway/IOS-15.6.3.M",
        "Allow: INVITE, OPTIONS, BYE, CANCEL, ACK, PRACK, UPDATE, REFER, SUBSCRIBE, NOTIFY, INFO, REGISTER",
        "CSeq: 101 INVITE",
        "Contact: <sip:+13125550100@192.0.2.10:5060>",
        "Expires: 180",
        "Max-Forwards: 70",
        'P-Asserted-Identity: "Front Desk" <sip:+13125550100@192.0.2.10>',
        "Session-Expires:  1800",
        "Content-Type: application/sdp",
    ],
    sdp(
        "v=0",
        "o=CiscoSystemsSIP-GW-UserAgent 4821 1956 IN IP4 192.0.2.10",
        "s=SIP Call",
        "c=IN IP4 192.0.2.10",
        "t=0 0",
        "m=audio 16384 RTP/AVP 0 8 101",
        "c=IN IP4 192.0.2.10",
        *AUDIO_G711,
        "a=ptime:20",
    ),
)

# Asterisk 20 chan_pjsip: `;rport;branch=z9hG4bKPj<uuid>`, UUID tags and Call-ID, Contact with
# the endpoint name, 100rel in Supported, a=maxptime and an explicit a=sendrecv.
CORPUS["invite-asterisk.sip"] = message(
    "INVITE sip:+14155550123@sip.carrier.example;transport=udp SIP/2.0",
    [
        "Via: SIP/2.0/UDP 198.51.100.20:5060;rport;branch=z9hG4bKPj4f3c2a1b-8d7e-4c6b-9a5f-0e1d2c3b4a59",
        'From: "Alice" <sip:2001@198.51.100.20>;tag=6b0f2a3c-5d4e-4f8a-9b1c-2d3e4f5a6b7c',
        "To: <sip:+14155550123@sip.carrier.example>",
        "Contact: <sip:asterisk@198.51.100.20:5060>",
        "Call-ID: 0d6f1b2a-3c4d-4e5f-8a9b-0c1d2e3f4a5b",
        "CSeq: 28710 INVITE",
        "Allow: OPTIONS, REGISTER, SUBSCRIBE, NOTIFY, PUBLISH, INVITE, ACK, BYE, CANCEL, UPDATE, PRACK, MESSAGE, REFER",
        "Supported: 100rel, timer, replaces, norefersub, histinfo",
        "Session-Expires: 1800",
        "Min-SE: 90",
        'P-Asserted-Identity: "Alice" <sip:2001@198.51.100.20>',
        "Max-Forwards: 70",
        "User-Agent: Asterisk PBX 20.5.2",
        "Content-Type: application/sdp",
    ],
    sdp(
        "v=0",
        "o=- 1405421838 1405421838 IN IP4 198.51.100.20",
        "s=Asterisk",
        "c=IN IP4 198.51.100.20",
        "t=0 0",
        "m=audio 17302 RTP/AVP 0 8 9 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:9 G722/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        "a=ptime:20",
        "a=maxptime:150",
        "a=sendrecv",
    ),
)

# FreeSWITCH 1.10 mod_sofia: Via without port (5060 implied); X- headers and Remote-Party-ID
# after Content-Length, as sofia-sip orders them; comfort noise and an explicit a=rtcp.
CORPUS["invite-freeswitch.sip"] = message(
    "INVITE sip:+442079460123@sip.carrier.example SIP/2.0",
    [
        "Via: SIP/2.0/UDP 203.0.113.30;rport;branch=z9hG4bKQ3gB8yK1r9H2c",
        "Max-Forwards: 70",
        'From: "Bob Smith" <sip:+13035550142@203.0.113.30>;tag=8c1Ny4Q2pXN6F',
        "To: <sip:+442079460123@sip.carrier.example>",
        "Call-ID: 7a3f0b9e-1c2d-4e5f-a6b7-c8d9e0f1a2b3",
        "CSeq: 123456 INVITE",
        "Contact: <sip:mod_sofia@203.0.113.30:5060>",
        "User-Agent: FreeSWITCH-mod_sofia/1.10.11-release~64bit",
        "Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE, INFO, UPDATE, REGISTER, REFER, NOTIFY",
        "Supported: timer, path, replaces",
        "Allow-Events: talk, hold, conference, refer",
        "Content-Type: application/sdp",
        "Content-Disposition: session",
        ("Content-Length", None),
        "X-FS-Support: update_display,send_info",
        "X-Carrier-Account: acct-4411",
        'Remote-Party-ID: "Bob Smith" <sip:+13035550142@203.0.113.30>;party=calling;screen=yes;privacy=off',
    ],
    sdp(
        "v=0",
        "o=FreeSWITCH 1736840000 1736840001 IN IP4 203.0.113.30",
        "s=FreeSWITCH",
        "c=IN IP4 203.0.113.30",
        "t=0 0",
        "m=audio 24588 RTP/AVP 0 8 101 13",
        *AUDIO_G711,
        "a=rtpmap:13 CN/8000",
        "a=ptime:20",
        "a=rtcp:24589 IN IP4 203.0.113.30",
    ),
)

# The carrier's 200 OK to the SBC's outbound INVITE, through two record-routing proxies; the
# SBC sits behind NAT (sent-by 192.0.2.50, seen as 203.0.113.50:61234).
CORPUS["ok-sdp.sip"] = message(
    "SIP/2.0 200 OK",
    [
        "Via: SIP/2.0/UDP 192.0.2.50:5060;branch=z9hG4bK-sbc-7f3a2c;rport=61234;received=203.0.113.50",
        "Record-Route: <sip:198.51.100.61;lr;ftag=as5f3a1c2b>",
        "Record-Route: <sip:198.51.100.60;lr>",
        "From: <sip:+13125550100@203.0.113.5>;tag=as5f3a1c2b",
        "To: <sip:+12125551234@carrier.example.com>;tag=a94c095b773be1dd6e8d668a785a9c84",
        "Call-ID: 3848276298220188511@203.0.113.5",
        "CSeq: 102 INVITE",
        "Contact: <sip:+12125551234@198.51.100.70:5060;transport=udp>",
        "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, PRACK, INFO",
        "Supported: timer",
        "Require: timer",
        "Session-Expires: 1800;refresher=uac",
        "Server: Carrier-SBC/4.2",
        "Content-Type: application/sdp",
    ],
    sdp(
        "v=0",
        "o=- 2890844526 2890844527 IN IP4 198.51.100.70",
        "s=-",
        "c=IN IP4 198.51.100.71",
        "t=0 0",
        "m=audio 31000 RTP/AVP 0 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15",
        "a=ptime:20",
        "a=sendrecv",
    ),
)

NONCE_TELNYX = "Y4Jx2GN8q1XgH0bXz9xG6Q3Zb7v2kWmP"
OPAQUE_TELNYX = "5ccc069c403ebaf9f0171e9517f40e41"

# Register-on-behalf answering the 401 below (RFC 7616 §3.4 credentials, RFC 3261 §22.4).
CORPUS["register-auth.sip"] = message(
    "REGISTER sip:sip.telnyx.com SIP/2.0",
    [
        "Via: SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bK-reg-2;rport",
        "Max-Forwards: 70",
        "From: <sip:sbcuser@sip.telnyx.com>;tag=reg-8f2e1d",
        "To: <sip:sbcuser@sip.telnyx.com>",
        "Call-ID: reg-4c1b9a7e@203.0.113.5",
        "CSeq: 2 REGISTER",
        "Contact: <sip:sbcuser@203.0.113.5:5060>;expires=300",
        "Expires: 300",
        'Authorization: Digest username="sbcuser", realm="sip.telnyx.com", nonce="%s", '
        'uri="sip:sip.telnyx.com", response="6629fae49393a05397450978507c4ef1", algorithm=MD5, '
        'cnonce="0a4f113b", qop=auth, nc=00000001, opaque="%s"' % (NONCE_TELNYX, OPAQUE_TELNYX),
        "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS",
        "User-Agent: sbcd/0.1",
    ],
)

# The registrar's challenge to the first REGISTER (CSeq 1).
CORPUS["401-telnyx.sip"] = message(
    "SIP/2.0 401 Unauthorized",
    [
        "Via: SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bK-reg-1;rport=5060;received=203.0.113.5",
        "From: <sip:sbcuser@sip.telnyx.com>;tag=reg-8f2e1d",
        "To: <sip:sbcuser@sip.telnyx.com>;tag=SDd3f2a1b-1736867045",
        "Call-ID: reg-4c1b9a7e@203.0.113.5",
        "CSeq: 1 REGISTER",
        'WWW-Authenticate: Digest realm="sip.telnyx.com", nonce="%s", qop="auth", algorithm=MD5, '
        'opaque="%s"' % (NONCE_TELNYX, OPAQUE_TELNYX),
        "Server: Telnyx SIP Proxy",
    ],
)

# A carrier proxy offering SHA-256 first and MD5 for older clients (RFC 8760 §2.4): two
# Proxy-Authenticate headers, the client picks the first algorithm it supports.
CORPUS["407-multi.sip"] = message(
    "SIP/2.0 407 Proxy Authentication Required",
    [
        "Via: SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bK-sbc-inv1;rport=5060;received=203.0.113.5",
        "From: <sip:+13125550100@203.0.113.5>;tag=as5f3a1c2b",
        "To: <sip:+12125551234@carrier.example.com>;tag=7b2d9e41-407",
        "Call-ID: 3848276298220188511@203.0.113.5",
        "CSeq: 101 INVITE",
        'Proxy-Authenticate: Digest realm="carrier.example.com", '
        'nonce="a3f1c29e8b7d6c5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c", opaque="7e1d2c3b4a59", '
        'algorithm=SHA-256, qop="auth"',
        'Proxy-Authenticate: Digest realm="carrier.example.com", '
        'nonce="a3f1c29e8b7d6c5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c", opaque="7e1d2c3b4a59", '
        'algorithm=MD5, qop="auth"',
        "Server: Carrier-SBC/4.2",
    ],
)

# The SBC's ACK for the 200 OK: Request-URI is the remote Contact, Route is the reversed
# Record-Route set (RFC 3261 §12.1.2), a new branch (§17.1.1.3 applies to non-2xx only).
CORPUS["ack.sip"] = message(
    "ACK sip:+12125551234@198.51.100.70:5060;transport=udp SIP/2.0",
    [
        "Via: SIP/2.0/UDP 192.0.2.50:5060;branch=z9hG4bK-sbc-ack-102;rport",
        "Route: <sip:198.51.100.60;lr>",
        "Route: <sip:198.51.100.61;lr;ftag=as5f3a1c2b>",
        "Max-Forwards: 70",
        "From: <sip:+13125550100@203.0.113.5>;tag=as5f3a1c2b",
        "To: <sip:+12125551234@carrier.example.com>;tag=a94c095b773be1dd6e8d668a785a9c84",
        "Call-ID: 3848276298220188511@203.0.113.5",
        "CSeq: 102 ACK",
        "Contact: <sip:+13125550100@203.0.113.50:61234>",
    ],
)

# The carrier hangs up: BYE through its record-routing proxy (two Vias), with a Q.850 Reason.
CORPUS["bye.sip"] = message(
    "BYE sip:+13125550100@203.0.113.50:61234 SIP/2.0",
    [
        "Via: SIP/2.0/UDP 198.51.100.61:5060;branch=z9hG4bK4b1e.9f2c3a1b.0",
        "Via: SIP/2.0/UDP 198.51.100.70:5060;branch=z9hG4bK-uas-bye-1;rport=5060",
        "Max-Forwards: 69",
        "From: <sip:+12125551234@carrier.example.com>;tag=a94c095b773be1dd6e8d668a785a9c84",
        "To: <sip:+13125550100@203.0.113.5>;tag=as5f3a1c2b",
        "Call-ID: 3848276298220188511@203.0.113.5",
        "CSeq: 2001 BYE",
        'Reason: Q.850;cause=16;text="Normal call clearing"',
        "User-Agent: Carrier-SBC/4.2",
    ],
)

# Compact forms (RFC 3261 §7.3.3) in mixed case, as size-squeezing UAs send them over UDP:
# v f t i m l c k s x, two Vias split over a `v` and a `V` line.
CORPUS["invite-compact.sip"] = message(
    "INVITE sip:+16175550199@sbc.example.com SIP/2.0",
    [
        "v: SIP/2.0/UDP 198.51.100.40:5060;branch=z9hG4bKc0mp4ct1;rport",
        "V: SIP/2.0/UDP 198.51.100.41:5070;branch=z9hG4bKc0mp4ct0;received=198.51.100.99",
        "Max-Forwards: 70",
        'f: "Compact" <sip:+15085550111@198.51.100.40>;tag=cf-77',
        "T: <sip:+16175550199@sbc.example.com>",
        "i: compact-3f9a@198.51.100.40",
        "CSeq: 7 INVITE",
        "m: <sip:+15085550111@198.51.100.40:5060>",
        "K: timer, 100rel",
        "s: compact form test",
        "x: 1800",
        "C: application/sdp",
        ("L", None),
    ],
    sdp(
        "v=0",
        "o=- 7 7 IN IP4 198.51.100.40",
        "s=-",
        "c=IN IP4 198.51.100.40",
        "t=0 0",
        "m=audio 49170 RTP/AVP 8 101",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
    ),
)

# An IPv6-only PBX (RFC 5118): bracketed sent-by with port, received= once bare and once
# bracketed (§4.5 allows both), IPv6 Contact and Request-URI, an IN IP6 session description.
CORPUS["invite-ipv6.sip"] = message(
    "INVITE sip:+12125551234@[2001:db8::5]:5060 SIP/2.0",
    [
        "Via: SIP/2.0/UDP [2001:db8:10::20]:5060;branch=z9hG4bK-v6-1;rport=5060;received=2001:db8:ffff::20",
        "Via: SIP/2.0/UDP [2001:db8:20::1]:5062;branch=z9hG4bK-v6-0;received=[2001:db8:20::99]",
        "Max-Forwards: 69",
        'From: "IPv6 PBX" <sip:+13125550100@[2001:db8:10::20]>;tag=v6-a1b2c3',
        "To: <sip:+12125551234@[2001:db8::5]>",
        "Call-ID: 5f1e2d3c-v6@2001:db8:10::20",
        "CSeq: 1 INVITE",
        "Contact: <sip:+13125550100@[2001:db8:10::20]:5060>",
        "Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE",
        "Supported: timer, replaces",
        "Content-Type: application/sdp",
    ],
    sdp(
        "v=0",
        "o=- 3916000 3916000 IN IP6 2001:db8:10::20",
        "s=-",
        "c=IN IP6 2001:db8:10::30",
        "t=0 0",
        "m=audio 20000 RTP/AVP 8 0 101",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        "a=ptime:20",
    ),
)

# The carrier's keep-alive ping to the SBC's trunk address (no user part in the Request-URI).
CORPUS["options-keepalive.sip"] = message(
    "OPTIONS sip:203.0.113.5:5060 SIP/2.0",
    [
        "Via: SIP/2.0/UDP 198.51.100.60:5060;branch=z9hG4bK-ping-8a1f",
        "Max-Forwards: 70",
        "From: <sip:ping@198.51.100.60>;tag=ping-51d2",
        "To: <sip:203.0.113.5:5060>",
        "Call-ID: 9d2f6c1e-ping@198.51.100.60",
        "CSeq: 4711 OPTIONS",
        "Contact: <sip:ping@198.51.100.60:5060>",
        "Accept: application/sdp",
        "User-Agent: Carrier-SBC/4.2",
    ],
)

# CUBE cancelling invite-cube.sip: same branch, Call-ID, From tag and CSeq number (§9.1).
CORPUS["cancel.sip"] = message(
    "CANCEL sip:+12125551234@203.0.113.5:5060 SIP/2.0",
    [
        "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK1A2B3C4D5;rport",
        'From: "Front Desk" <sip:+13125550100@192.0.2.10>;tag=5F3A1C-2B7',
        "To: <sip:+12125551234@203.0.113.5>",
        "Call-ID: 8C2A1F00-D1B211EF-8E3FA4B2-1C9D0E77@192.0.2.10",
        "CSeq: 101 CANCEL",
        "Max-Forwards: 70",
        "Reason: Q.850;cause=16",
        "User-Agent: Cisco-SIPGateway/IOS-15.6.3.M",
    ],
)

# Early media from the carrier: reliable 183 (RFC 3262) with SDP and P-Early-Media (RFC 5009).
CORPUS["183-early-media.sip"] = message(
    "SIP/2.0 183 Session Progress",
    [
        "Via: SIP/2.0/UDP 192.0.2.50:5060;branch=z9hG4bK-sbc-7f3a2c;rport=61234;received=203.0.113.50",
        "Record-Route: <sip:198.51.100.61;lr;ftag=as5f3a1c2b>",
        "Record-Route: <sip:198.51.100.60;lr>",
        "From: <sip:+13125550100@203.0.113.5>;tag=as5f3a1c2b",
        "To: <sip:+12125551234@carrier.example.com>;tag=a94c095b773be1dd6e8d668a785a9c84",
        "Call-ID: 3848276298220188511@203.0.113.5",
        "CSeq: 102 INVITE",
        "Contact: <sip:+12125551234@198.51.100.70:5060;transport=udp>",
        "Require: 100rel",
        "RSeq: 1",
        "P-Early-Media: sendrecv",
        "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, PRACK, INFO",
        "Content-Type: application/sdp",
    ],
    sdp(
        "v=0",
        "o=- 2890844526 2890844526 IN IP4 198.51.100.70",
        "s=-",
        "c=IN IP4 198.51.100.71",
        "t=0 0",
        "m=audio 31000 RTP/AVP 0 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15",
        "a=ptime:20",
        "a=sendrecv",
    ),
)


def main():
    check = "--check" in sys.argv[1:]
    stale = []
    for name, data in sorted(CORPUS.items()):
        path = os.path.join(HERE, name)
        if check:
            try:
                with open(path, "rb") as f:
                    if f.read() != data:
                        stale.append(name)
            except FileNotFoundError:
                stale.append(name)
            continue
        with open(path, "wb") as f:
            f.write(data)
        print("%-24s %5d bytes" % (name, len(data)))
    if stale:
        print("out of date (run make.py): " + ", ".join(stale), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
