#!/usr/bin/env python3
"""AUC / GAUC with scikit-learn and pandas on the files written by `auc_bench` (see
benches/src/bin/auc_bench.rs), checked against longtail's values. Not part of CI.

Usage: auc_vs_sklearn.py DATA_DIR [--longtail-json FILE] [--repeats 3] [--naive-users 10000]
       [--naive-full] [--tol 1e-9]

Timed (best wall time of --repeats, arrays already in memory as numpy):
  * sklearn_auc:  sklearn.metrics.roc_auc_score(labels, scores) on all samples.
  * pandas_gauc:  vectorised rank-based per-user AUC in pandas: a DataFrame from the arrays,
                  groupby(user).rank(method="average") of the scores, then per user the
                  Mann-Whitney U from the rank sum of positives; users with one class are left
                  out; the mean is weighted by the user's sample count (longtail's definition).
  * naive_gauc:   the common groupby(user).apply(roc_auc_score) version. It is slow (one Python
                  call per user), so by default it runs once on the users with id < --naive-users
                  and the full-data time is extrapolated linearly in the number of users (marked
                  "extrapolated"); --naive-full runs it on every user instead. On that subset its
                  value is checked against the vectorised pandas GAUC of the same subset.
Prints one JSON object.
"""
import argparse
import json
import os
import platform
import sys
import time

import numpy as np
import pandas as pd
import sklearn
from sklearn.metrics import roc_auc_score


def best_of(repeats, f):
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - t)
    return best, out


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


def machine():
    model = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu_model": model, "platform": platform.platform()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("data_dir")
    ap.add_argument("--longtail-json", help="auc_bench's JSON output, to check the values against")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--naive-users", type=int, default=10_000)
    ap.add_argument("--naive-full", action="store_true")
    ap.add_argument("--tol", type=float, default=1e-9)
    a = ap.parse_args()

    d = a.data_dir
    scores = np.fromfile(os.path.join(d, "scores.f32"), dtype="<f4")
    labels = np.fromfile(os.path.join(d, "labels.f32"), dtype="<f4")
    users = np.fromfile(os.path.join(d, "users.u32"), dtype="<u4")
    if not (len(scores) == len(labels) == len(users)):
        sys.exit("arrays differ in length")
    n_users = int(users.max()) + 1

    auc_s, auc = best_of(a.repeats, lambda: float(roc_auc_score(labels, scores)))
    gauc_s, (gauc, used, skipped, samples_used) = best_of(
        a.repeats, lambda: pandas_gauc(users, scores, labels)
    )

    # Naive groupby-apply, on a subset of users unless --naive-full.
    if a.naive_full:
        mask = np.ones(len(users), dtype=bool)
        k_users = n_users
    else:
        k_users = min(a.naive_users, n_users)
        mask = users < k_users
    su, ss, sl = users[mask], scores[mask], labels[mask]
    t = time.perf_counter()
    naive, naive_used = naive_gauc(su, ss, sl)
    naive_sub_s = time.perf_counter() - t
    vec_sub = pandas_gauc(su, ss, sl)[0]
    naive = {
        "method": "groupby('user').apply(roc_auc_score), single-class users skipped",
        "users": k_users,
        "samples": int(mask.sum()),
        "users_used": naive_used,
        "s": naive_sub_s,
        "gauc_subset": naive,
        "vectorised_gauc_subset": vec_sub,
        "matches_vectorised": abs(naive - vec_sub) <= a.tol,
        "full_s": naive_sub_s * n_users / k_users,
        "full_s_is": "measured" if k_users == n_users else "extrapolated linearly in users",
    }

    out = {
        "tool": "scikit-learn + pandas",
        "n": int(len(scores)),
        "users": n_users,
        "auc": auc,
        "gauc": gauc,
        "gauc_users_used": used,
        "gauc_users_skipped": skipped,
        "gauc_samples_used": samples_used,
        "auc_s": auc_s,
        "gauc_s": gauc_s,
        "auc_method": "sklearn.metrics.roc_auc_score(labels, scores)",
        "gauc_method": "pandas vectorised: groupby(user).rank(average) -> per-user Mann-Whitney U",
        "naive_gauc": naive,
        "repeats": a.repeats,
        "timing": "best wall time of `repeats` runs, arrays already in memory",
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "sklearn": sklearn.__version__,
        },
        "machine": machine(),
    }
    ok = naive["matches_vectorised"]
    if a.longtail_json:
        with open(a.longtail_json) as f:
            lt = json.load(f)
        d_auc = abs(lt["auc"] - auc)
        d_gauc = abs(lt["gauc"] - gauc)
        counts = (lt["gauc_users_used"], lt["gauc_users_skipped"], lt["gauc_samples_used"]) == (
            used, skipped, samples_used)
        out["check"] = {
            "tol": a.tol,
            "auc_abs_diff": d_auc,
            "gauc_abs_diff": d_gauc,
            "gauc_counts_equal": counts,
            "match": d_auc <= a.tol and d_gauc <= a.tol and counts,
            "speedup_auc": auc_s / lt["auc_s"],
            "speedup_gauc_vs_pandas_vectorised": gauc_s / lt["gauc_s"],
            "speedup_gauc_vs_naive_apply": naive["full_s"] / lt["gauc_s"],
        }
        ok = ok and out["check"]["match"]
    print(json.dumps(out, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
