#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ (git-ignored): digest credentials and challenges in the shapes
# carriers send (MD5, SHA-256, -sess, qop lists, opaque, RFC 2069), and the codec's torture
# messages and carrier captures, each behind a source selector byte, for `identify`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
codec="$here/../../sip-codec/tests"
corpus="$here/corpus"
mkdir -p "$corpus/verify_credentials" "$corpus/answer_challenge" "$corpus/identify"
n=0
creds() { n=$((n + 1)); printf '%s%s' "$1" "$2" > "$corpus/verify_credentials/seed-$n"; }
creds A 'Digest username="pbx1", realm="sbc.test", nonce="AAAAAAAAAGQAAAAAAAAAAFu8VH5kO3n1Qp1Xz8Vn6sE", uri="sip:12125551234@127.0.0.1:5060", response="0123456789abcdef0123456789abcdef", algorithm=MD5, qop=auth, nc=00000001, cnonce="0a4f113b"'
creds B 'Digest username="pbx1",realm="sbc.test",nonce="x",uri="sip:127.0.0.1:5060",response="ab",algorithm=SHA-256'
creds A 'Digest username="pbx1", realm="sbc.test", nonce="n", uri="sip:12125551234@127.0.0.1:5060", response="r", algorithm=MD5-sess, qop=auth, nc=0000000a, cnonce="c", opaque="o"'
creds B 'Basic cGJ4MTpwdzE='
n=0
chal() { n=$((n + 1)); printf '%s' "$1" > "$corpus/answer_challenge/seed-$n"; }
chal 'Digest realm="carrier.test", nonce="abc", algorithm=MD5, qop="auth", opaque="o1"'
chal 'Digest realm="carrier.test", nonce="n-opaque-1", opaque="Zm9vYmFy/==", algorithm=MD5'
chal 'Digest realm="a", nonce="1", algorithm=SHA-256, qop="auth,auth-int", stale=true, Digest realm="b", nonce="2"'
chal 'Digest realm="x",nonce="y",qop="auth-int",algorithm=SHA-256-sess'
chal 'Digest realm="x", nonce="y", domain="sip:x", algorithm=MD5-sess'
shopt -s nullglob
for f in "$codec"/data/*.dat "$codec"/carrier/*.sip; do
  for s in 0 1 2 3; do
    { printf "\\x0$s"; cat "$f"; } > "$corpus/identify/$(basename "$f")-$s"
  done
done
echo "seeded: $(ls "$corpus/verify_credentials" | wc -l) credentials, $(ls "$corpus/answer_challenge" | wc -l) challenges, $(ls "$corpus/identify" | wc -l) requests"
