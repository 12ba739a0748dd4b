#!/usr/bin/env python3
"""Prints the sip_parse bench results as a markdown table.

Reads criterion's output (target/criterion/<group>/<function>/<message>/new/{benchmark,estimates}.json)
after `cargo bench -p sbcd-suite --bench sip_parse`, and prints one row per message of the `parse`
group (sip-codec median, rsip median, rsip/sip-codec ratio) and the medians of the `build` group.

    python3 benches/summarize.py [TARGET_DIR]   # default: ./target
"""

import glob
import json
import os
import sys


def fmt_ns(ns):
    if ns >= 1e6:
        return "%.2f ms" % (ns / 1e6)
    if ns >= 1e3:
        return "%.2f µs" % (ns / 1e3)
    return "%.0f ns" % ns


def fmt_rate(nbytes, ns):
    if not nbytes or not ns:
        return ""
    return "%.0f MiB/s" % (nbytes / (ns / 1e9) / (1 << 20))


def load(target):
    """{(group, function, value): (median_ns, bytes)} from every `new/` result."""
    results = {}
    pattern = os.path.join(target, "criterion", "**", "new", "benchmark.json")
    for bench_path in glob.glob(pattern, recursive=True):
        new_dir = os.path.dirname(bench_path)
        est_path = os.path.join(new_dir, "estimates.json")
        if not os.path.exists(est_path):
            continue
        with open(bench_path) as f:
            bench = json.load(f)
        with open(est_path) as f:
            est = json.load(f)
        throughput = bench.get("throughput") or {}
        nbytes = throughput.get("Bytes") or throughput.get("BytesDecimal")
        key = (bench.get("group_id"), bench.get("function_id"), bench.get("value_str"))
        results[key] = (est["median"]["point_estimate"], nbytes)
    return results


def main():
    target = sys.argv[1] if len(sys.argv) > 1 else "target"
    results = load(target)
    if not results:
        sys.exit("no criterion results under %s/criterion; run the bench first" % target)

    order = []
    for (group, function, value) in sorted(results):
        if group == "parse" and value not in order:
            order.append(value)
    # Keep the bench's own order where known (messages as listed in benches/sip_parse.rs).
    preferred = ["invite-cube", "ok-sdp", "register-auth", "401-telnyx", "ack", "bye"]
    order.sort(key=lambda v: preferred.index(v) if v in preferred else len(preferred))

    for group in ("parse", "parse+read"):
        if not any(k[0] == group for k in results):
            continue
        print("`%s`:" % group)
        print()
        print("| message | bytes | sip-codec median | rsip median | rsip / sip-codec |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for value in order:
            ours = results.get((group, "sip-codec", value))
            theirs = results.get((group, "rsip", value))
            nbytes = (ours or theirs or (None, None))[1]
            cells = [value, str(nbytes or "")]
            for r in (ours, theirs):
                cells.append("%s (%s)" % (fmt_ns(r[0]), fmt_rate(r[1], r[0])) if r else "n/a")
            cells.append("%.1f×" % (theirs[0] / ours[0]) if ours and theirs else "n/a")
            print("| " + " | ".join(cells) + " |")
        print()

    builds = sorted(k for k in results if k[0] == "build")
    if builds:
        print()
        print("| build | bytes written | median |")
        print("| --- | ---: | ---: |")
        for key in builds:
            median, nbytes = results[key]
            name = "/".join(p for p in key[1:] if p)
            print("| %s | %s | %s (%s) |" % (name, nbytes or "", fmt_ns(median), fmt_rate(nbytes, median)))


if __name__ == "__main__":
    main()
