#!/usr/bin/env python3
"""PyTorch eager twin of one IDW sleep phase, the peer of longtail's density worker
(`longtail_train::bench::workers::density_worker`, which calls `longtail_core::density::sleep_phase`).

Usage: density_twin.py DIR [--chunk 2048] [--repeats 3] [--device cpu|cuda|cuda:N] [--threads N]
       [--compare FILE] [--out FILE]

DIR holds the inputs longtail's `density_inputs` wrote: reps.f32 ([items, dim] row-major, little-endian
float32), weights.f32 ([items], the current weights w(t)) and meta.json (items, dim, momentum). Both
sides read the same files. The computation (the IDW paper, section 3.3, Algorithm 2), in float32 with
every item valid, written the way longtail's sleep_phase is so the two do the same work:
  * Scott's rule: l = sigma * N^(-1/(D+4)), sigma = the mean over the D dimensions of the unbiased
    per-dimension standard deviation (fallback 1e-6 when sigma is 0 or not finite);
  * eq. 7: p(y) = (1/l) sum_k w_k exp(-|v_y - v_k|^2 / (2 l^2)), `chunk` rows at a time against all
    N with torch.cdist in its direct (no matmul) mode, then kernel @ w;
  * eq. 8: p' = clamp((p - min p) / (max p - min p), 0, 1) (all zeros when max == min);
  * eq. 9: h = 1 - p', w(t+1) = m w(t) + (1 - m) h / sum h (uniform h when sum h == 0);
  * the stopping quantity |w(t+1) - w(t)|_2.
One untimed warm-up, then --repeats timed phases, each ended by reading a value back (.item(), which
waits for the device). Threads: --threads (default torch's, which honours OMP_NUM_THREADS), set with
torch.set_num_threads before anything runs; longtail's libtorch is the same build.

Prints one JSON object: {"figures": {"density/sleep_phase": {"ms": median, "best_ms": best, "items",
"dim", "chunk", "pairs_per_s" (items^2 / median s), "threads", "cuda", "bandwidth", "weight_change",
"checksum" (sum_i (i+1) w_i / N of the new weights, float64), and with --compare FILE (longtail's
output weights, raw float32) "max_abs_diff"}}}. Exits 1 when --tol is given and max_abs_diff exceeds it.
--out FILE writes this side's new weights the same way.
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import torch

FALLBACK_BANDWIDTH = 1e-6
CDIST_DIRECT = "donot_use_mm_for_euclid_dist"


def scott_bandwidth(reps):
    n, d = reps.shape
    if n < 2 or d < 1:
        return FALLBACK_BANDWIDTH
    sigma = reps.std(dim=0, unbiased=True).mean().item()
    if not (np.isfinite(sigma) and sigma > 0.0):
        return FALLBACK_BANDWIDTH
    return max(sigma * n ** (-1.0 / (d + 4.0)), FALLBACK_BANDWIDTH)


def kernel_density(reps, w, bandwidth, chunk):
    """Eq. 7, chunked: [chunk, N] kernel values at a time."""
    n = reps.shape[0]
    neg_half_inv_l2 = -0.5 / (bandwidth * bandwidth)
    parts = []
    for start in range(0, n, chunk):
        rows = reps[start:start + chunk]
        dist = torch.cdist(rows, reps, p=2.0, compute_mode=CDIST_DIRECT)
        kernel = (dist.square() * neg_half_inv_l2).exp()
        parts.append(kernel.mv(w))
    return torch.cat(parts) / bandwidth


def sleep_phase(reps, w, momentum, valid, chunk):
    """One phase; returns (w(t+1), bandwidth, weight_change)."""
    idx = valid.nonzero().squeeze(1)
    reps_v = reps.index_select(0, idx)
    w_v = w.index_select(0, idx)
    bandwidth = scott_bandwidth(reps_v)
    dens = kernel_density(reps_v, w_v, bandwidth, chunk)
    lo, hi = dens.min().item(), dens.max().item()
    if hi > lo:
        p_rel_v = ((dens - lo) / (hi - lo)).clamp(0.0, 1.0)
    else:
        p_rel_v = torch.zeros_like(dens)
    p_rel = torch.zeros_like(w).index_put((idx,), p_rel_v)
    keep = valid.to(torch.float32)
    h = (1.0 - p_rel) * keep
    total = h.sum().item()
    if total <= 0.0:
        h = keep
        total = h.sum().item()
    new_w = (w * momentum + h * ((1.0 - momentum) / total)) * keep
    return new_w, bandwidth, (new_w - w).norm().item()


def checksum(w):
    w = np.asarray(w, dtype=np.float64)
    return float(np.sum(np.arange(1, w.size + 1, dtype=np.float64) * w) / max(w.size, 1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--chunk", type=int, default=2048)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--compare", help="longtail's output weights (raw float32) to diff against")
    ap.add_argument("--tol", type=float, default=None, help="fail when max_abs_diff exceeds it")
    ap.add_argument("--out", help="write this side's new weights (raw float32) here")
    a = ap.parse_args()
    if a.repeats < 1 or a.chunk < 1:
        sys.exit("--repeats and --chunk must be at least 1")
    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device(a.device)

    with open(os.path.join(a.dir, "meta.json")) as f:
        meta = json.load(f)
    items, dim = int(meta["items"]), int(meta["dim"])
    momentum = float(meta.get("momentum", 0.9))
    reps_np = np.fromfile(os.path.join(a.dir, "reps.f32"), dtype="<f4")
    w_np = np.fromfile(os.path.join(a.dir, "weights.f32"), dtype="<f4")
    if reps_np.size != items * dim or w_np.size != items:
        sys.exit(f"reps.f32 has {reps_np.size} values, weights.f32 {w_np.size}; "
                 f"meta.json says [{items}, {dim}] and [{items}]")
    reps = torch.from_numpy(reps_np.reshape(items, dim).copy()).to(device)
    w = torch.from_numpy(w_np.copy()).to(device)
    valid = torch.ones(items, dtype=torch.bool, device=device)

    def phase():
        with torch.no_grad():
            out = sleep_phase(reps, w, momentum, valid, a.chunk)
            out[0].sum().item()  # waits for the device
        return out

    phase()  # warm-up
    times, result = [], None
    for _ in range(a.repeats):
        t = time.perf_counter()
        result = phase()
        times.append(time.perf_counter() - t)
    new_w, bandwidth, change = result
    new_np = new_w.to("cpu").numpy().astype("<f4")
    med = statistics.median(times)
    fig = {
        "ms": med * 1e3,
        "best_ms": min(times) * 1e3,
        "items": float(items),
        "dim": float(dim),
        "chunk": float(a.chunk),
        "pairs_per_s": float(items) * float(items) / med,
        "threads": float(torch.get_num_threads()),
        "cuda": 1.0 if device.type == "cuda" else 0.0,
        "bandwidth": float(bandwidth),
        "weight_change": float(change),
        "checksum": checksum(new_np),
    }
    ok = True
    if a.compare:
        theirs = np.fromfile(a.compare, dtype="<f4")
        if theirs.size != new_np.size:
            sys.exit(f"{a.compare} has {theirs.size} weights, expected {new_np.size}")
        fig["max_abs_diff"] = float(np.max(np.abs(theirs.astype(np.float64) - new_np)))
        if a.tol is not None and fig["max_abs_diff"] > a.tol:
            print(f"density_twin: max abs diff {fig['max_abs_diff']:.3e} > {a.tol:g}", file=sys.stderr)
            ok = False
    if a.out:
        new_np.tofile(a.out)
    print(json.dumps({"figures": {"density/sleep_phase": fig}}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
