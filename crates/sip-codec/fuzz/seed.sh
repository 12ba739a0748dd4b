#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ from the codec's fixtures. corpus/ is git-ignored; libFuzzer adds
# what it finds there, so re-running this only refreshes the seeds.
#   messages: tests/data/*.dat (RFC 4475/5118 torture) and tests/carrier/*.sip (carrier captures)
#   SDP:      the bodies of those messages that carry one (everything after the first empty line)
#   URIs:     every Request-URI of those messages plus a few written here
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tests="$here/../tests"
corpus="$here/corpus"
shopt -s nullglob
msgs=("$tests"/data/*.dat "$tests"/carrier/*.sip)

for t in parse_datagram parse_stream roundtrip parse_sdp parse_uri; do mkdir -p "$corpus/$t"; done
for f in "${msgs[@]}"; do
    seed="$(basename "$(dirname "$f")")-$(basename "$f")"
    for t in parse_datagram parse_stream roundtrip; do cp "$f" "$corpus/$t/$seed"; done
    # SDP body: the bytes after the first CRLFCRLF (or LFLF), if they look like SDP.
    python3 - "$f" "$corpus/parse_sdp/$seed" <<'PY'
import re, sys
data = open(sys.argv[1], "rb").read()
m = re.search(rb"\r?\n\r?\n", data)
if m and b"v=0" in data[m.end():]:
    open(sys.argv[2], "wb").write(data[m.end():])
PY
    # Request-URI: the second field of a request line.
    head -n 1 "$f" | tr -d '\r' | awk '$1 !~ /^SIP\// && NF >= 3 { printf "%s", $2 }' > "$corpus/parse_uri/$seed"
    [ -s "$corpus/parse_uri/$seed" ] || rm -f "$corpus/parse_uri/$seed"
done

i=0
while IFS= read -r uri; do
    i=$((i + 1))
    printf '%s' "$uri" > "$corpus/parse_uri/hand-$i"
done <<'URIS'
sip:alice@atlanta.example.com
sips:bob:secret@biloxi.example.com:5061;transport=tcp;lr?subject=project%20x&priority=urgent
sip:+1-212-555-1212:1234@gateway.com;user=phone
sip:91919#12127773456@k3x9q.sbc.test
sip:[2001:db8::10]:5070;maddr=[2001:db8::1]
sip:%61lice@atlanta.example.com;transport=TCP
sip:192.0.2.4;method=REGISTER?to=alice%40atlanta.example.com
tel:+1-201-555-0123;ext=1234;phone-context=example.com
urn:service:sos
mailto:a@example.com
URIS
echo "seeded $(find "$corpus" -type f | wc -l) files under $corpus"
