#!/usr/bin/env python3
"""AUC / GAUC with scikit-learn and pandas on the arrays longtail's `auc_inputs` wrote (see
`longtail_train::bench::workers`; `auc_bench --out DIR` or `longtail bench worker auc` write them),
the peer of longtail's `auc_worker`. Not part of the tests' timings.

Usage: auc_vs_sklearn.py DATA_DIR [--repeats 3] [--longtail-json FILE] [--tol 1e-9]
       [--naive-users N] [--naive-full]

Timed (median and best wall time of --repeats, arrays already in memory as numpy):
  * metrics/auc_<n>:  sklearn.metrics.roc_auc_score(labels, scores) on all samples.
  * metrics/gauc_<n>: vectorised rank-based per-user AUC in pandas: a DataFrame from the arrays,
                      groupby(user).rank(method="average") of the scores, then per user the
                      Mann-Whitney U from the rank sum of positives; users with one class are left
                      out; the mean is weighted by the user's sample count (longtail's definition).
  * metrics/gauc_<n>_naive (only with --naive-users N > 0 or --naive-full): the common
                      groupby(user).apply(roc_auc_score). It is slow (one Python call per user), so
                      it runs once on the users with id < N and its full-data time is extrapolated
                      linearly in the number of users (`extrapolated` = 1); --naive-full runs it on
                      every user. On that subset its value must equal the vectorised GAUC's.
<n> is the sample count as longtail names it: 10m for 10,000,000, 20k for 20,000, else the number.

Prints one JSON object, the schema every side prints: {"figures": {"metrics/auc_10m": {"ms", "best_ms",
"value", "n", "threads"}, "metrics/gauc_10m": {"ms", "best_ms", "value", "users_used", "users_skipped",
"samples_used", "threads"}}}. With --longtail-json (longtail's figures for the same files) each figure
gains `abs_diff` (|value - longtail's|) and the script exits 1 when one exceeds --tol or the GAUC
counts differ. Versions go to stderr.
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np
import pandas as pd
import sklearn
from sklearn.metrics import roc_auc_score


def timed(repeats, f):
    """(median s, best s, last result) of `repeats` runs of f."""
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times), out


def size_tag(n):
    if n > 0 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}m"
    if n > 0 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


def pandas_gauc(users, scores, labels):
    """Vectorised sample-weighted GAUC. Returns (gauc, users_used, users_skipped, samples_used)."""
    df = pd.DataFrame({"user": users, "score": scores, "pos": labels > 0.5})
    g = df.groupby("user", sort=False)
    rank = g["score"].rank(method="average")  # ranks within the user, ties averaged
    df["rank_pos"] = rank.where(df["pos"], 0.0)
    agg = df.groupby("user", sort=False).agg(
        n=("pos", "size"), n_pos=("pos", "sum"), rank_sum=("rank_pos", "sum")
    )
    n = agg["n"].to_numpy(np.float64)
    n_pos = agg["n_pos"].to_numpy(np.float64)
    n_neg = n - n_pos
    valid = (n_pos > 0) & (n_neg > 0)
    u = agg["rank_sum"].to_numpy(np.float64)[valid] - n_pos[valid] * (n_pos[valid] + 1) / 2
    auc_u = u / (n_pos[valid] * n_neg[valid])
    w = n[valid]
    gauc = float(np.sum(auc_u * w) / np.sum(w)) if w.size else None
    return gauc, int(valid.sum()), int((~valid).sum()), int(w.sum())


def naive_gauc(users, scores, labels):
    """groupby-apply with sklearn's roc_auc_score per user, single-class users skipped."""
    df = pd.DataFrame({"user": users, "score": scores, "label": labels})

    def per_user(g):
        if g["label"].nunique() < 2:
            return pd.Series({"auc": np.nan, "n": len(g)})
        return pd.Series({"auc": roc_auc_score(g["label"], g["score"]), "n": len(g)})

    r = df.groupby("user").apply(per_user, include_groups=False)
    r = r.dropna()
    return float(np.sum(r["auc"] * r["n"]) / np.sum(r["n"])), int(len(r))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("data_dir")
    ap.add_argument("--longtail-json", help="longtail's figures JSON, to check the values against")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--naive-users", type=int, default=0)
    ap.add_argument("--naive-full", action="store_true")
    ap.add_argument("--tol", type=float, default=1e-9)
    a = ap.parse_args()
    if a.repeats < 1:
        sys.exit("--repeats must be at least 1")

    d = a.data_dir
    scores = np.fromfile(os.path.join(d, "scores.f32"), dtype="<f4")
    labels = np.fromfile(os.path.join(d, "labels.f32"), dtype="<f4")
    users = np.fromfile(os.path.join(d, "users.u32"), dtype="<u4")
    if not (len(scores) == len(labels) == len(users)):
        sys.exit("arrays differ in length")
    n = int(len(scores))
    tag = size_tag(n)

    auc_ms, auc_best, auc = timed(a.repeats, lambda: float(roc_auc_score(labels, scores)))
    gauc_ms, gauc_best, (gauc, used, skipped, samples_used) = timed(
        a.repeats, lambda: pandas_gauc(users, scores, labels)
    )
    figs = {
        f"metrics/auc_{tag}": {"ms": auc_ms * 1e3, "best_ms": auc_best * 1e3, "value": auc,
                               "n": float(n), "threads": 1.0},
        f"metrics/gauc_{tag}": {"ms": gauc_ms * 1e3, "best_ms": gauc_best * 1e3, "value": gauc,
                                "users_used": float(used), "users_skipped": float(skipped),
                                "samples_used": float(samples_used), "threads": 1.0},
    }
    ok = True

    if a.naive_full or a.naive_users > 0:
        n_users = int(users.max()) + 1
        k_users = n_users if a.naive_full else min(a.naive_users, n_users)
        mask = users < k_users
        su, ss, sl = users[mask], scores[mask], labels[mask]
        t = time.perf_counter()
        naive, _ = naive_gauc(su, ss, sl)
        sub_s = time.perf_counter() - t
        vec_sub = pandas_gauc(su, ss, sl)[0]
        full_ms = sub_s * n_users / k_users * 1e3
        figs[f"metrics/gauc_{tag}_naive"] = {
            "ms": full_ms, "best_ms": full_ms, "measured_ms": sub_s * 1e3,
            "users": float(k_users), "samples": float(mask.sum()),
            "extrapolated": 0.0 if k_users == n_users else 1.0,
            "subset_value": naive, "subset_abs_diff": abs(naive - vec_sub),
        }
        if abs(naive - vec_sub) > a.tol:
            print(f"auc_vs_sklearn: naive GAUC {naive!r} != vectorised {vec_sub!r} on the subset",
                  file=sys.stderr)
            ok = False

    if a.longtail_json:
        with open(a.longtail_json) as f:
            lt = json.load(f)["figures"]
        for fid in (f"metrics/auc_{tag}", f"metrics/gauc_{tag}"):
            diff = abs(lt[fid]["value"] - figs[fid]["value"])
            figs[fid]["abs_diff"] = diff
            if diff > a.tol:
                print(f"auc_vs_sklearn: {fid}: {figs[fid]['value']!r} vs longtail "
                      f"{lt[fid]['value']!r} (|d| = {diff:.1e} > {a.tol:g})", file=sys.stderr)
                ok = False
        g, lg = figs[f"metrics/gauc_{tag}"], lt[f"metrics/gauc_{tag}"]
        for k in ("users_used", "users_skipped", "samples_used"):
            if g[k] != lg.get(k):
                print(f"auc_vs_sklearn: gauc {k} {g[k]} vs longtail {lg.get(k)}", file=sys.stderr)
                ok = False

    print(f"auc_vs_sklearn: python {platform.python_version()}, numpy {np.__version__}, "
          f"pandas {pd.__version__}, scikit-learn {sklearn.__version__}", file=sys.stderr)
    print(json.dumps({"figures": figs}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
