#!/usr/bin/env bash
# Data pipeline: longtail import + prepare vs the same work in pandas, on ml-1m (users 1-2999) and
# MovieTweetings (100k). Not part of CI. Usage (from anywhere):
#
#   benches/run_data_benchmark.sh [OUT_DIR] [-- extra data_bench / data_vs_pandas.py args]
#
# OUT_DIR defaults to target/data-bench; each dataset gets OUT_DIR/<dataset>/{longtail,pandas}/
# (the prepared folders, about 10 MB each) and the JSON reports OUT_DIR/<dataset>.{longtail,
# longtail-sessions,pandas}.json. Every run is its own process, so peak RSS is per dataset and
# per tool. The raw files are read from $LONGTAIL_DATA_DIR (default <repo>/../shared/data).
# The Python side runs in a venv at ${LONGTAIL_BENCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/longtail/bench-venv},
# created on first use with numpy, pandas, scikit-learn and pyarrow (needs python3 and pip access;
# pyarrow is added to an existing venv that lacks it).
# Extra environment: REPEATS (default 5) runs per timing; SESSIONS=0 skips the extra
# longtail-only run of prepare with HIM sessions.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/target/data-bench"
if [ $# -gt 0 ] && [ "$1" != "--" ]; then out="$1"; shift; fi
if [ "${1:-}" = "--" ]; then shift; fi
venv="${LONGTAIL_BENCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/longtail/bench-venv}"
export LONGTAIL_DATA_DIR="${LONGTAIL_DATA_DIR:-$root/../shared/data}"
repeats="${REPEATS:-5}"

echo "== building data_bench (release)" >&2
(cd "$root" && cargo build --release -q -p longtail-benches --bin data_bench)
target_dir="$(cd "$root" && cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"

if [ ! -x "$venv/bin/python" ]; then
  echo "== creating venv $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q numpy pandas scikit-learn pyarrow
elif ! "$venv/bin/python" -c 'import pyarrow' 2>/dev/null; then
  echo "== adding pyarrow to $venv" >&2
  "$venv/bin/pip" install -q pyarrow
fi

mkdir -p "$out"
status=0
for ds in ml-1m movietweetings; do
  echo "== $ds: longtail" >&2
  "$target_dir/release/data_bench" --dataset "$ds" --out "$out/$ds/longtail" --repeats "$repeats" \
    "$@" > "$out/$ds.longtail.json"
  if [ "${SESSIONS:-1}" = 1 ]; then
    echo "== $ds: longtail with HIM sessions" >&2
    "$target_dir/release/data_bench" --dataset "$ds" --out "$out/$ds/longtail" \
      --repeats "$repeats" --sessions "$@" > "$out/$ds.longtail-sessions.json"
  fi
  echo "== $ds: pandas" >&2
  "$venv/bin/python" "$root/benches/data_vs_pandas.py" --dataset "$ds" --out "$out/$ds/pandas" \
    --repeats "$repeats" --longtail-dir "$out/$ds/longtail/prepared" "$@" \
    > "$out/$ds.pandas.json" || status=$?
done

"$venv/bin/python" - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
load = lambda p: json.load(open(p)) if os.path.exists(p) else None
mb = lambda kb: "%.0f MB" % (kb / 1024) if kb is not None else "n/a"
rows = []
for ds in ("ml-1m", "movietweetings"):
    lt, ls, py = (load(os.path.join(out, f"{ds}.{t}.json"))
                  for t in ("longtail", "longtail-sessions", "pandas"))
    rows.append((ds, lt, ls, py))
m = rows[0][3]["machine"]
print("\n== data pipeline: import + prepare (best of %d; rows/s = input rows / best time)" %
      rows[0][1]["repeats"])
print("machine: nproc=%s, CPU %s, RAM %.1f GiB; longtail rayon threads=%d; %s" % (
    m["nproc"], m["cpu_model"], m["mem_total_kb"] / 2**20, rows[0][1]["rayon_threads"],
    ", ".join("%s %s" % kv for kv in rows[0][3]["versions"].items())))
print()
print("| dataset (rows) | tool | import (best / median) | import rows/s "
      "| import + prepare (best / median) | rows/s | peak RSS (start) |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for ds, lt, ls, py in rows:
    for name, r in (("longtail", lt), ("pandas", py), ("longtail + HIM sessions", ls)):
        if r is None:
            continue
        i, p = r["import"], r["prepare"]
        imp = "%.3f s / %.3f s" % (i["best_s"], i["median_s"])
        print("| %s (%s) | %s | %s | %s | %.3f s / %.3f s | %s | %s (%s) |" % (
            ds, f"{r['rows']:,}", name, imp, f"{i['rows_per_s']:,.0f}", p["best_s"],
            p["median_s"], f"{p['rows_per_s']:,.0f}", mb(r["peak_rss_kb"]),
            mb(r["rss_start_kb"])))
print()
for ds, lt, ls, py in rows:
    print("%s: longtail faster by %.1fx (import) and %.1fx (import + prepare); peak RSS %.1fx lower;"
          " positives %d / %d, samples %d / %d, check: %s" % (
        ds, py["import"]["best_s"] / lt["import"]["best_s"],
        py["prepare"]["best_s"] / lt["prepare"]["best_s"], py["peak_rss_kb"] / lt["peak_rss_kb"],
        lt["positives"], py["positives"], lt["samples"], py["samples"],
        "MATCH" if py.get("check", {}).get("match") else "MISMATCH"))
PY
exit $status
