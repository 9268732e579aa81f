#!/usr/bin/env python3
"""A Markdown table of two sides' `{"figures": {...}}` JSON files (longtail's and a peer's), for the
benches/run_*_benchmark.sh scripts: per figure id, each side's median ms (best ms), the ratio
peer / longtail of the medians (above 1: longtail is faster) and the extras both sides report.
Standard library only.

Usage: figures_summary.py LONGTAIL_JSON PEER_JSON [--peer-name NAME] [--title TEXT]
"""
import argparse
import json


def fmt(x):
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        return f"{int(x):,}"
    if isinstance(x, float) and (abs(x) >= 1e4 or (x != 0 and abs(x) < 1e-3)):
        return f"{x:.6g}"
    return f"{x:.10g}" if isinstance(x, float) else str(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("longtail")
    ap.add_argument("peer")
    ap.add_argument("--peer-name", default="peer")
    ap.add_argument("--title")
    a = ap.parse_args()
    ours = json.load(open(a.longtail))["figures"]
    theirs = json.load(open(a.peer))["figures"]
    if a.title:
        print(f"\n== {a.title}")
    print(f"\n| figure | longtail ms (best) | {a.peer_name} ms (best) | {a.peer_name} / longtail |")
    print("| --- | --- | --- | --- |")
    for fid in list(ours) + [f for f in theirs if f not in ours]:
        o, t = ours.get(fid), theirs.get(fid)
        side = lambda f: "%.2f (%.2f)" % (f["ms"], f["best_ms"]) if f else "-"
        ratio = "%.2fx" % (t["ms"] / o["ms"]) if o and t and o["ms"] > 0 else "-"
        print(f"| {fid} | {side(o)} | {side(t)} | {ratio} |")
    print()
    for fid in list(ours) + [f for f in theirs if f not in ours]:
        o, t = ours.get(fid, {}), theirs.get(fid, {})
        keys = [k for k in list(o) + [k for k in t if k not in o] if k not in ("ms", "best_ms")]
        parts = []
        for k in keys:
            if k in o and k in t and o[k] != t[k]:
                parts.append(f"{k} {fmt(o[k])} / {fmt(t[k])}")
            else:
                parts.append(f"{k} {fmt(o.get(k, t.get(k)))}" + ("" if k in o and k in t else
                                                              " (longtail)" if k in o else
                                                              f" ({a.peer_name})"))
        print(f"- {fid}: " + "; ".join(parts))


if __name__ == "__main__":
    main()
