#!/usr/bin/env bash
# Data pipeline: longtail import + prepare vs the same work in pandas, on ml-1m (users 1-2999) and
# MovieTweetings (100k). Not part of CI (the bench suite, `longtail bench suite`, runs the same
# workers interleaved). Usage (from anywhere):
#
#   benches/run_data_benchmark.sh [OUT_DIR] [-- extra data_bench / data_vs_pandas.py args]
#
# OUT_DIR defaults to target/data-bench; each dataset gets OUT_DIR/<dataset>/{longtail,pandas}/
# (the prepared folders, about 10 MB each) and the figures JSON files OUT_DIR/<dataset>.{longtail,
# longtail-sessions,pandas}.json (`{"figures": {...}}`). Every run is its own process, so peak RSS
# is per dataset and per tool. The raw files are read from $LONGTAIL_DATA_DIR (default
# <repo>/../shared/data). The Python side runs in the torch venv (scripts/setup-libtorch) with the
# packages scripts/setup-bench pins (installed on first use).
# Extra environment: REPEATS (default 5) runs per timing; SESSIONS=0 skips the extra
# longtail-only run of prepare with HIM sessions.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/target/data-bench"
if [ $# -gt 0 ] && [ "$1" != "--" ]; then out="$1"; shift; fi
if [ "${1:-}" = "--" ]; then shift; fi
export LONGTAIL_DATA_DIR="${LONGTAIL_DATA_DIR:-$root/../shared/data}"
repeats="${REPEATS:-5}"

cd "$root"
eval "$(scripts/setup-libtorch --print-env)"
scripts/setup-bench
py="$VIRTUAL_ENV/bin/python"

echo "== building data_bench (release)" >&2
cargo build --release -q -p longtail-benches --bin data_bench
target_dir="$(cargo metadata --format-version 1 --no-deps \
  | "$py" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"

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
  "$py" "$root/benches/data_vs_pandas.py" --dataset "$ds" --out "$out/$ds/pandas" \
    --repeats "$repeats" --longtail-dir "$out/$ds/longtail/prepared" "$@" \
    > "$out/$ds.pandas.json" || status=$?
  "$py" "$root/benches/figures_summary.py" "$out/$ds.longtail.json" "$out/$ds.pandas.json" \
    --peer-name pandas --title "$ds: import + prepare (median of $repeats; peer / longtail > 1: longtail faster)"
  if [ "${SESSIONS:-1}" = 1 ]; then
    "$py" -c 'import json,sys
f = json.load(open(sys.argv[1]))["figures"]
for k, v in f.items():
    if k.endswith("prepare_sessions"):
        print("- %s (longtail only): %.2f ms (best %.2f), peak RSS %.0f MB" % (k, v["ms"], v["best_ms"], v["peak_rss_mb"]))' \
      "$out/$ds.longtail-sessions.json"
  fi
done
[ "$status" = 0 ] || echo "== pandas and longtail disagree on the ids, positives or histories (see above)" >&2
exit $status
