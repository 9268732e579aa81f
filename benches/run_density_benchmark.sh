#!/usr/bin/env bash
# IDW sleep phase: longtail (`longtail_core::density::sleep_phase`) vs its PyTorch eager twin
# (benches/peers/density_twin.py) on the same 3706 x 16 item representations, chunk 2048, the same
# libtorch and threads. Not part of CI (the bench suite, `longtail bench suite`, runs the same
# workers interleaved). Usage (from anywhere):
#
#   benches/run_density_benchmark.sh [OUT_DIR] [-- extra density_bench args, e.g. --items 10000]
#
# OUT_DIR defaults to target/density-bench: the inputs (reps.f32, weights.f32, meta.json),
# longtail's new weights (longtail_weights.f32) and the figures JSON files longtail.json and
# twin.json. Exits non-zero when the two sides' weights differ by more than 1e-5.
# Extra environment: REPEATS (default 5), THREADS (CPU threads of both sides, default libtorch's),
# DEVICE (default cpu; cuda for a GPU, both sides).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/target/density-bench"
if [ $# -gt 0 ] && [ "$1" != "--" ]; then out="$1"; shift; fi
if [ "${1:-}" = "--" ]; then shift; fi
repeats="${REPEATS:-5}"
device="${DEVICE:-cpu}"
[ -n "${THREADS:-}" ] && export OMP_NUM_THREADS="$THREADS"

cd "$root"
eval "$(scripts/setup-libtorch --print-env)"
scripts/setup-bench
py="$VIRTUAL_ENV/bin/python"

echo "== building density_bench (release)" >&2
cargo build --release -q -p longtail-benches --bin density_bench
target_dir="$(cargo metadata --format-version 1 --no-deps \
  | "$py" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"

mkdir -p "$out"
echo "== longtail: inputs in $out, one sleep phase" >&2
"$target_dir/release/density_bench" --out "$out" --repeats "$repeats" --device "$device" "$@" \
  > "$out/longtail.json"
chunk="$("$py" -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["figures"]["density/sleep_phase"]["chunk"]))' "$out/longtail.json")"
threads="$("$py" -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["figures"]["density/sleep_phase"]["threads"]))' "$out/longtail.json")"

echo "== PyTorch eager twin" >&2
status=0
"$py" "$root/benches/peers/density_twin.py" "$out" --chunk "$chunk" --repeats "$repeats" \
  --device "$device" --threads "$threads" --compare "$out/longtail_weights.f32" --tol 1e-5 \
  > "$out/twin.json" || status=$?

"$py" "$root/benches/figures_summary.py" "$out/longtail.json" "$out/twin.json" \
  --peer-name "pytorch-eager" --title "IDW sleep phase (median of $repeats; peer / longtail > 1: longtail faster)"
exit $status
