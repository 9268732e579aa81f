#!/usr/bin/env bash
# AUC / GAUC: longtail vs scikit-learn's roc_auc_score and a pandas groupby GAUC, on the same
# 10M scores / 1M users. Not part of CI. Usage (from anywhere):
#
#   benches/run_auc_benchmark.sh [OUT_DIR] [-- extra auc_bench args]
#
# OUT_DIR defaults to target/auc-bench (about 120 MB of raw arrays plus the two JSON reports).
# The Python side runs in a venv at ${LONGTAIL_BENCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/longtail/bench-venv},
# created on first use with numpy, pandas and scikit-learn (needs python3 and pip access).
# Extra environment: NAIVE_USERS (default 10000) users for the naive groupby-apply timing,
# NAIVE_FULL=1 to run the naive version on every user (about half an hour on 2 cores).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/target/auc-bench"
if [ $# -gt 0 ] && [ "$1" != "--" ]; then out="$1"; shift; fi
if [ "${1:-}" = "--" ]; then shift; fi
venv="${LONGTAIL_BENCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/longtail/bench-venv}"

echo "== building auc_bench (release)" >&2
(cd "$root" && cargo build --release -q -p longtail-benches --bin auc_bench)
target_dir="$(cd "$root" && cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"

if [ ! -x "$venv/bin/python" ]; then
  echo "== creating venv $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q numpy pandas scikit-learn
fi

mkdir -p "$out"
echo "== longtail: generating data in $out and timing auc/gauc" >&2
"$target_dir/release/auc_bench" --out "$out" "$@" > "$out/longtail.json"
cat "$out/longtail.json"

echo "== scikit-learn / pandas" >&2
py_args=(--longtail-json "$out/longtail.json" --naive-users "${NAIVE_USERS:-10000}")
[ "${NAIVE_FULL:-0}" = 1 ] && py_args+=(--naive-full)
status=0
"$venv/bin/python" "$root/benches/auc_vs_sklearn.py" "$out" "${py_args[@]}" > "$out/python.json" \
  || status=$?
cat "$out/python.json"

"$venv/bin/python" - "$out/longtail.json" "$out/python.json" <<'PY'
import json, sys
lt, py = (json.load(open(p)) for p in sys.argv[1:3])
c, nv = py["check"], py["naive_gauc"]
print("\n== summary (n=%d, users=%d, rayon threads=%d, nproc=%s, %s)" % (
    lt["n"], lt["users"], lt["rayon_threads"], py["machine"]["nproc"], py["machine"]["cpu_model"]))
print("AUC : longtail %.4f s | sklearn roc_auc_score %.4f s | %.1fx" % (
    lt["auc_s"], py["auc_s"], c["speedup_auc"]))
print("GAUC: longtail %.4f s | pandas vectorised %.4f s | %.1fx" % (
    lt["gauc_s"], py["gauc_s"], c["speedup_gauc_vs_pandas_vectorised"]))
print("GAUC: naive groupby-apply(roc_auc_score) %.1f s (%s, from %d users in %.1f s) | %.0fx" % (
    nv["full_s"], nv["full_s_is"], nv["users"], nv["s"], c["speedup_gauc_vs_naive_apply"]))
print("values: auc %.15f vs %.15f (|d|=%.1e), gauc %.15f vs %.15f (|d|=%.1e): %s (tol %g)" % (
    lt["auc"], py["auc"], c["auc_abs_diff"], lt["gauc"], py["gauc"], c["gauc_abs_diff"],
    "MATCH" if c["match"] else "MISMATCH", c["tol"]))
PY
exit $status
