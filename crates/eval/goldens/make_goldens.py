#!/usr/bin/env python3
"""Reference values for longtail-eval, computed with scikit-learn.

Writes goldens.json (inputs AND expected values) next to this script; the Rust test
crates/eval/tests/it/goldens.rs reads it and compares to 1e-9. CI never runs Python.

Regenerate (only when adding cases):
    python3 -m venv /tmp/goldvenv && /tmp/goldvenv/bin/pip install -q numpy scikit-learn
    /tmp/goldvenv/bin/python crates/eval/goldens/make_goldens.py

Scores are rounded to float32 first (the Rust side reads them as f32), so both sides see the very
same numbers. For logloss the probabilities are clipped to [1e-7, 1 - 1e-7] here, as the Rust code
does (scikit-learn itself clips with the dtype's machine epsilon).
"""
import json
import os

import numpy as np
import sklearn
from sklearn.metrics import log_loss, roc_auc_score

EPS = 1e-7
rng = np.random.default_rng(20240601)


def f32(x):
    """float32-exact float64 values, as the Rust side will read them."""
    return np.asarray(x, dtype=np.float32).astype(np.float64)


def ref_auc(scores, labels):
    if len(np.unique(labels)) < 2:
        return None
    return float(roc_auc_score(labels, scores))


def correlated_labels(scores):
    return (rng.random(len(scores)) < 0.15 + 0.6 * scores).astype(np.float64)


auc_cases = []


def add_auc(name, scores, labels):
    scores, labels = f32(scores), np.asarray(labels, dtype=np.float64)
    auc_cases.append({"name": name, "scores": scores.tolist(), "labels": labels.tolist(),
                      "expected": ref_auc(scores, labels)})


s = np.round(rng.random(1000), 2)  # ~100 distinct values: many ties
add_auc("random_n1000_2dp_ties", s, correlated_labels(s))
s = rng.random(500)  # no ties
add_auc("random_n500_continuous", s, correlated_labels(s))
s = np.round(rng.normal(0.0, 3.0, 700), 1)  # negative scores and ties
add_auc("normal_n700_negative_scores", s, (rng.random(700) < 1 / (1 + np.exp(-s))).astype(float))
add_auc("all_tied", np.full(50, 0.5), (np.arange(50) % 3 == 0).astype(float))
add_auc("hand_ties", [0.1, 0.4, 0.35, 0.8, 0.4, 0.1], [0, 0, 1, 1, 1, 1])
add_auc("perfect", [0.1, 0.2, 0.3, 0.4], [0, 0, 1, 1])
add_auc("reversed", [0.4, 0.3, 0.2, 0.1], [0, 0, 1, 1])
add_auc("single_class", [0.1, 0.5, 0.9], [1, 1, 1])
add_auc("imbalanced_one_positive", np.round(rng.random(200), 1), (np.arange(200) == 17).astype(float))


def ref_gauc(users, scores, labels):
    """Per-user roc_auc_score weighted by the user's sample count; single-class users skipped."""
    order = np.argsort(users, kind="stable")
    u, s, l = users[order], scores[order], labels[order]
    uniq, starts, counts = np.unique(u, return_index=True, return_counts=True)
    num, used, skipped, samples = 0.0, 0, 0, 0
    for st, c in zip(starts, counts):
        ls, ss = l[st:st + c], s[st:st + c]
        if len(np.unique(ls)) < 2:
            skipped += 1
            continue
        num += roc_auc_score(ls, ss) * c
        used += 1
        samples += int(c)
    return {"gauc": (num / samples) if samples else None, "users_used": used,
            "users_skipped": skipped, "samples_used": samples}


gauc_cases = []


def add_gauc(name, users, scores, labels):
    users = np.asarray(users, dtype=np.int64)
    scores, labels = f32(scores), np.asarray(labels, dtype=np.float64)
    gauc_cases.append({"name": name, "users": users.tolist(), "scores": scores.tolist(),
                       "labels": labels.tolist(), "expected": ref_gauc(users, scores, labels)})


n = 2000
ids = rng.choice(np.arange(1000, 100000), size=60, replace=False)  # sparse, unsorted ids
users = ids[rng.integers(0, 60, n)]
s = np.round(rng.random(n), 2)
l = correlated_labels(s)
l[np.isin(users, ids[:4])] = 0.0  # single-class users (all negative)
l[np.isin(users, ids[4:7])] = 1.0  # single-class users (all positive)
users = np.append(users, 7)  # a user with one sample
s, l = np.append(s, 0.3), np.append(l, 1.0)
add_gauc("multi_user_n2001_with_skips", users, s, l)
add_gauc("all_single_class", [1, 1, 2, 2], [0.1, 0.2, 0.3, 0.4], [0, 0, 1, 1])
add_gauc("hand_three_users", [5, 2, 9, 5, 2, 5, 9], [0.9, 0.1, 0.3, 0.2, 0.8, 0.5, 0.4],
         [1, 1, 0, 0, 0, 1, 0])

grouped_cases = []
n = 1000
g = rng.integers(0, 3, n)
s = np.round(rng.random(n), 2)
l = correlated_labels(s)
l[g == 2] = 1.0  # group "head" has one class: omitted
s, l = f32(s), l.astype(np.float64)
names = ["tail", "body", "head", "empty"]
grouped_cases.append({
    "name": "user_groups_n1000", "groups": g.tolist(), "names": names,
    "scores": s.tolist(), "labels": l.tolist(),
    "expected": [ref_auc(s[g == k], l[g == k]) if (g == k).any() else None
                 for k in range(len(names))],
})

logloss_cases = []


def add_logloss(name, probs, labels):
    probs, labels = f32(probs), np.asarray(labels, dtype=np.float64)
    clipped = np.clip(probs, EPS, 1 - EPS)
    logloss_cases.append({"name": name, "scores": probs.tolist(), "labels": labels.tolist(),
                          "expected": float(log_loss(labels, clipped, labels=[0, 1]))})


p = rng.random(1000)
add_logloss("random_n1000", p, correlated_labels(p))
p = np.concatenate([[0.0, 1.0, 0.0, 1.0, 1e-9, 1 - 1e-9], rng.random(20)])
add_logloss("clipped_extremes", p, np.concatenate([[1, 0, 0, 1, 1, 0], rng.integers(0, 2, 20)]))
add_logloss("single_class", [0.2, 0.7, 0.9], [1, 1, 1])

out = {
    "generator": "crates/eval/goldens/make_goldens.py",
    "sklearn_version": sklearn.__version__,
    "numpy_version": np.__version__,
    "logloss_eps": EPS,
    "auc": auc_cases,
    "gauc": gauc_cases,
    "grouped_auc": grouped_cases,
    "logloss": logloss_cases,
}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "goldens.json")
with open(path, "w") as f:
    json.dump(out, f, separators=(",", ":"))
    f.write("\n")
print(f"wrote {path}: {len(auc_cases)} auc, {len(gauc_cases)} gauc, "
      f"{len(grouped_cases)} grouped, {len(logloss_cases)} logloss cases")
