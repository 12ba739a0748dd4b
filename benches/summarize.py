#!/usr/bin/env python3
"""Prints the sip_parse bench results as a markdown table.

Reads criterion's output (target/criterion/<group>/<function>/<message>/new/{benchmark,estimates}.json)
after `cargo bench -p sbcd-suite --bench sip_parse`, and prints one row per message of the `parse`
group (sip-codec median, rsip median, rsip/sip-codec ratio) and the medians of the `build` group.

    python3 benches/summarize.py [TARGET_DIR]          # default: ./target
    python3 benches/summarize.py --raw [TARGET_DIR] >> runs.jsonl   # after each of N runs
    python3 benches/summarize.py --aggregate runs.jsonl  # median of the per-run medians
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


def aggregate(path):
    """Median of per-run medians from the JSON lines that `--raw` appended to `path`."""
    runs = {}
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            runs.setdefault((r["group"], r["function"], r["value"]), []).append((r["median_ns"], r["bytes"]))
    out = {}
    spread = {}
    for key, vals in runs.items():
        ns = sorted(v[0] for v in vals)
        out[key] = (ns[len(ns) // 2], vals[0][1])
        spread[key] = (ns[0], ns[-1], len(ns))
    return out, spread


def main():
    args = sys.argv[1:]
    if args[:1] == ["--raw"]:
        # One JSON line per result of the latest run, to append to a file across runs.
        target = args[1] if len(args) > 1 else "target"
        for (group, function, value), (median, nbytes) in sorted(load(target).items()):
            print(json.dumps({"group": group, "function": function, "value": value,
                              "median_ns": median, "bytes": nbytes}))
        return
    spread = {}
    if args[:1] == ["--aggregate"]:
        results, spread = aggregate(args[1])
    else:
        target = args[0] if args else "target"
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
            for fn, r in (("sip-codec", ours), ("rsip", theirs)):
                sp = spread.get((group, fn, value))
                extra = " [%s–%s, %d runs]" % (fmt_ns(sp[0]), fmt_ns(sp[1]), sp[2]) if sp else ""
                cells.append("%s (%s)%s" % (fmt_ns(r[0]), fmt_rate(r[1], r[0]), extra) if r else "n/a")
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
            sp = spread.get(key)
            extra = " [%s–%s, %d runs]" % (fmt_ns(sp[0]), fmt_ns(sp[1]), sp[2]) if sp else ""
            print("| %s | %s | %s (%s)%s |" % (name, nbytes or "", fmt_ns(median), fmt_rate(nbytes, median), extra))


if __name__ == "__main__":
    main()
