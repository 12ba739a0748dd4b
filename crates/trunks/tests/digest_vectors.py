#!/usr/bin/env python3
"""Independent digest vectors for crates/trunks/tests/digest.rs, computed with hashlib.

Run: python3 crates/trunks/tests/digest_vectors.py  (prints one line per vector, as the test
expects them). RFC 2617 / RFC 7616 / RFC 3261 §22.4 definitions:
  HA1 = H(user:realm:password)            (-sess: H(H(user:realm:password):nonce:cnonce))
  HA2 = H(method:uri)                     (qop=auth-int: H(method:uri:H(body)), RFC 7616 §3.4.3)
  response = H(HA1:nonce:nc:cnonce:qop:HA2)  with qop, else H(HA1:nonce:HA2)
"""
import hashlib

def h(alg, s):
    f = hashlib.md5 if alg.startswith("MD5") else hashlib.sha256
    return f(s.encode()).hexdigest()

def response(alg, user, realm, pw, nonce, method, uri, qop=None, nc=None, cnonce=None, body=""):
    ha1 = h(alg, f"{user}:{realm}:{pw}")
    if alg.endswith("-sess"):
        ha1 = h(alg, f"{ha1}:{nonce}:{cnonce}")
    ha2 = h(alg, f"{method}:{uri}")
    if qop == "auth-int":
        ha2 = h(alg, f"{method}:{uri}:{h(alg, body)}")
    if qop:
        return h(alg, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return h(alg, f"{ha1}:{nonce}:{ha2}")

VECTORS = [
    # RFC 7616 §3.9.1
    ("MD5", "Mufasa", "http-auth@example.org", "Circle of Life", "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "GET", "/dir/index.html", "auth", "00000001", "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"),
    ("SHA-256", "Mufasa", "http-auth@example.org", "Circle of Life", "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "GET", "/dir/index.html", "auth", "00000001", "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"),
    # RFC 2617 §3.5
    ("MD5", "Mufasa", "testrealm@host.com", "Circle Of Life", "dcd98b7102dd2f0e8b11d0f600bfb0c093", "GET", "/dir/index.html", "auth", "00000001", "0a4f113b"),
    # SIP: no qop (RFC 2069 style), as carriers send
    ("MD5", "sbc", "carrier.test", "pw", "abc123", "INVITE", "sip:12125551234@carrier.test", None, None, None),
    ("MD5-sess", "sbc", "carrier.test", "pw", "abc123", "REGISTER", "sip:carrier.test", "auth", "00000002", "deadbeef"),
    ("SHA-256", "sbc", "carrier.test", "pw", "n0nce", "BYE", "sip:ua@127.0.0.2:5080", "auth", "0000000a", "c0ffee"),
    ("SHA-256-sess", "sbc", "carrier.test", "pw", "n0nce", "INVITE", "sip:1@c.test", "auth", "00000001", "c0ffee"),
    # qop=auth-int (offered alone): the body is hashed into HA2; an empty body too
    ("MD5", "sbc", "carrier.test", "pw", "abc123", "INVITE", "sip:1@c.test", "auth-int", "00000001", "0a4f113b", "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n"),
    ("SHA-256", "sbc", "carrier.test", "pw", "n0nce", "BYE", "sip:ua@127.0.0.2:5080", "auth-int", "00000003", "c0ffee", ""),
]

if __name__ == "__main__":
    for v in VECTORS:
        v = v + ("",) * (11 - len(v))
        cols = ["" if x is None else x for x in v]
        cols[10] = cols[10].encode().hex()  # body as hex: it holds CRLF and '|'
        print("|".join(cols) + "|" + response(*v))
