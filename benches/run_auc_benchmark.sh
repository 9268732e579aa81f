#!/usr/bin/env bash
# AUC / GAUC: longtail vs scikit-learn's roc_auc_score and a vectorised pandas GAUC, on the same
# 10M scores / 1M users. Not part of CI (the bench suite, `longtail bench suite`, runs the same
# workers interleaved). Usage (from anywhere):
#
#   benches/run_auc_benchmark.sh [OUT_DIR] [-- extra auc_bench args, e.g. --n 1000000]
#
# OUT_DIR defaults to target/auc-bench (about 120 MB of raw arrays plus the two figures JSON files
# longtail.json and python.json, `{"figures": {...}}`). The Python side runs in the torch venv
# (scripts/setup-libtorch) with the packages scripts/setup-bench pins (installed on first use).
# Extra environment: REPEATS (default 3) runs per timing; NAIVE_USERS (default 10000) users for the
# naive groupby-apply timing (0 skips it), NAIVE_FULL=1 to run it on every user (about half an
# hour on 2 cores).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/target/auc-bench"
if [ $# -gt 0 ] && [ "$1" != "--" ]; then out="$1"; shift; fi
if [ "${1:-}" = "--" ]; then shift; fi
repeats="${REPEATS:-3}"

cd "$root"
eval "$(scripts/setup-libtorch --print-env)"
scripts/setup-bench
py="$VIRTUAL_ENV/bin/python"

echo "== building auc_bench (release)" >&2
cargo build --release -q -p longtail-benches --bin auc_bench
target_dir="$(cargo metadata --format-version 1 --no-deps \
  | "$py" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"

mkdir -p "$out"
echo "== longtail: generating data in $out and timing auc/gauc" >&2
"$target_dir/release/auc_bench" --out "$out" --repeats "$repeats" "$@" > "$out/longtail.json"

echo "== scikit-learn / pandas" >&2
py_args=(--longtail-json "$out/longtail.json" --repeats "$repeats" --naive-users "${NAIVE_USERS:-10000}")
[ "${NAIVE_FULL:-0}" = 1 ] && py_args+=(--naive-full)
status=0
"$py" "$root/benches/auc_vs_sklearn.py" "$out" "${py_args[@]}" > "$out/python.json" || status=$?

"$py" "$root/benches/figures_summary.py" "$out/longtail.json" "$out/python.json" \
  --peer-name "sklearn/pandas" --title "AUC / GAUC (median of $repeats; peer / longtail > 1: longtail faster)"
[ "$status" = 0 ] || echo "== the values differ (see above)" >&2
exit $status
