#!/usr/bin/env python3
"""Reference values for longtail-eval, computed with scikit-learn.

Writes goldens.json (inputs AND expected values) next to this script; the Rust tests
crates/eval/tests/it/goldens.rs and goldens_ranking.rs read it and compare to 1e-9 (silhouette:
1e-6). CI never runs Python.

Ranking metrics (HR/NDCG/MRR@K over candidate lists and full-catalogue top-K lists) and tail
share / coverage have no scikit-learn counterpart: they are written here as plain, independent
loops. A positive's rank in a candidate list is 1 + #negatives scored strictly higher + #tied
negatives / 2 (expected rank under random tie-breaking), as in crates/eval/src/ranking.rs.
Silhouette uses sklearn.metrics.silhouette_score (Euclidean).

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
from sklearn.metrics import log_loss, roc_auc_score, silhouette_score

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

# ---- ranking, silhouette, coverage (own generator so the cases above stay unchanged) ----

rng2 = np.random.default_rng(20240615)


def ref_rank(scores, labels, p):
    """1 + #negatives strictly above + #tied negatives / 2 (expected rank, random tie-breaking)."""
    higher, tied = 0, 0
    for q in range(len(scores)):
        if labels[q] > 0.5:
            continue
        if scores[q] > scores[p]:
            higher += 1
        elif scores[q] == scores[p]:
            tied += 1
    return 1.0 + higher + tied / 2.0


def ref_gains(rank, k):
    if rank <= k:
        return 1.0, 1.0 / np.log2(rank + 1.0), 1.0 / rank
    return 0.0, 0.0, 0.0


def ref_list_metrics(list_ids, scores, labels, groups, names, ks):
    """Plain loops: per list, mean over its positives; mean over lists with a positive."""
    out = {}
    lists = {}
    for i, lid in enumerate(list_ids):
        lists.setdefault(int(lid), []).append(i)
    used, skipped = [], 0
    for lid in sorted(lists):
        rows = lists[lid]
        ls, ss = labels[rows], scores[rows]
        pos = [j for j in range(len(rows)) if ls[j] > 0.5]
        if not pos:
            skipped += 1
            continue
        used.append([(int(groups[rows[j]]), ref_rank(ss, ls, j)) for j in pos])

    def emit(units, suffix):
        for k in ks:
            acc = [0.0, 0.0, 0.0]
            for ranks in units:
                for m in range(3):
                    acc[m] += sum(ref_gains(r, k)[m] for r in ranks) / len(ranks)
            for m, name in enumerate(["hr", "ndcg", "mrr"]):
                out[f"{name}@{k}{suffix}"] = acc[m] / len(units) if units else None

    emit([[r for _, r in u] for u in used], "")
    out["lists"] = float(len(used))
    out["lists_skipped"] = float(skipped)
    for g, name in enumerate(names):
        units = [[r for gg, r in u if gg == g] for u in used]
        units = [u for u in units if u]
        if units:
            emit(units, f"/item={name}")
            out[f"lists/item={name}"] = float(len(units))
    return out


list_cases = []


def add_lists(name, list_ids, scores, labels, groups, names, ks):
    list_ids = np.asarray(list_ids, dtype=np.int64)
    scores, labels = f32(scores), np.asarray(labels, dtype=np.float64)
    groups = np.asarray(groups, dtype=np.int64)
    list_cases.append({"name": name, "list_ids": list_ids.tolist(), "scores": scores.tolist(),
                       "labels": labels.tolist(), "item_group": groups.tolist(), "names": names,
                       "ks": ks,
                       "expected": ref_list_metrics(list_ids, scores, labels, groups, names, ks)})


# IDW protocol: 1 positive + 99 negatives per list, scores with 2 decimals (many ties), sparse
# unsorted list ids, rows shuffled across lists; one list with no positive.
n_lists, per = 60, 100
ids = rng2.choice(np.arange(10, 10**6), size=n_lists, replace=False)
lid = np.repeat(ids, per)
lab = np.tile(np.r_[1.0, np.zeros(per - 1)], n_lists)
sc = np.round(rng2.random(n_lists * per), 2)
sc[lab > 0.5] = np.round(np.clip(sc[lab > 0.5] + 0.3, 0, 1), 2)  # positives tend to rank high
grp = rng2.integers(0, 3, n_lists * per)
lab[lid == ids[5]] = 0.0  # no positive: skipped
perm = rng2.permutation(n_lists * per)
add_lists("idw_60x100_2dp_ties", lid[perm], sc[perm], lab[perm], grp[perm],
          ["tail", "body", "head"], [1, 5, 10, 20, 50])
# Coarse scores (one decimal) and several positives in some lists.
lid = rng2.integers(0, 25, 600)
sc = np.round(rng2.random(600), 1)
lab = (rng2.random(600) < 0.08).astype(float)
add_lists("multi_positive_coarse", lid, sc, lab, rng2.integers(0, 2, 600), ["tail", "head"],
          [1, 3, 10])
add_lists("hand_third", [7, 7, 7, 7, 7], [0.9, 0.5, 0.1, 0.6, 0.2], [0, 1, 0, 0, 0],
          [0, 0, 1, 1, 1], ["tail", "head"], [2, 5])


def ref_topk(topk, targets, ks):
    out = {}
    for k in ks:
        acc = [0.0, 0.0, 0.0]
        for lst, t in zip(topk, targets):
            pos = [j for j, i in enumerate(lst) if i == t]
            if pos:
                g = ref_gains(pos[0] + 1.0, k)
                for m in range(3):
                    acc[m] += g[m]
        for m, name in enumerate(["hr", "ndcg", "mrr"]):
            out[f"{name}@{k}"] = acc[m] / len(topk)
    out["users"] = float(len(topk))
    return out


topk_cases = []
n_items, n_users, K = 500, 200, 50
pop = 1.0 / np.arange(1, n_items + 1) ** 0.8
pop /= pop.sum()
topk = [rng2.choice(n_items, size=K, replace=False, p=pop).tolist() for _ in range(n_users)]
targets = [int(rng2.choice(n_items, p=pop)) for _ in range(n_users)]
topk[3] = topk[3][:7]  # a short list
topk[4] = []  # an empty list
topk_cases.append({"name": "zipf_500items_200users", "topk": topk, "targets": targets,
                   "ks": [1, 5, 10, 20, 50], "expected": ref_topk(topk, targets, [1, 5, 10, 20, 50])})


def ref_coverage(topk, k, item_group, num_items):
    slots = [i for lst in topk for i in lst[:k]]
    tail = sum(1 for i in slots if item_group[i] == 0)
    return {f"tail_share@{k}": tail / len(slots) if slots else None,
            f"coverage@{k}": len(set(slots)) / num_items}


coverage_cases = []
item_group = np.where(np.arange(n_items) < 40, 2, np.where(np.arange(n_items) < 150, 1, 0)).tolist()
for k in [5, 20, 50]:
    coverage_cases.append({"name": f"zipf_k{k}", "topk": topk, "k": k, "item_group": item_group,
                           "num_items": n_items,
                           "expected": ref_coverage(topk, k, item_group, n_items)})

silhouette_cases = []


def add_silhouette(name, points, labels):
    points = f32(points)
    labels = np.asarray(labels, dtype=np.int64)
    silhouette_cases.append({"name": name, "dim": int(points.shape[1]),
                             "points": points.ravel().tolist(), "labels": labels.tolist(),
                             "expected": float(silhouette_score(points, labels,
                                                                metric="euclidean"))})


for dim, n in [(2, 300), (8, 400)]:
    centers = rng2.normal(0.0, 4.0, (3, dim))
    lab = rng2.integers(0, 3, n - 1)
    pts = centers[lab] + rng2.normal(0.0, 1.5, (n - 1, dim))
    pts = np.vstack([pts, rng2.normal(0.0, 4.0, (1, dim))])  # the singleton cluster
    lab = np.r_[lab * 7 + 3, 1000]  # sparse label values
    add_silhouette(f"blobs_{dim}d_n{n}_singleton", pts, lab)

out = {
    "generator": "crates/eval/goldens/make_goldens.py",
    "sklearn_version": sklearn.__version__,
    "numpy_version": np.__version__,
    "logloss_eps": EPS,
    "auc": auc_cases,
    "gauc": gauc_cases,
    "grouped_auc": grouped_cases,
    "logloss": logloss_cases,
    "list_metrics": list_cases,
    "topk_metrics": topk_cases,
    "coverage": coverage_cases,
    "silhouette": silhouette_cases,
}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "goldens.json")
with open(path, "w") as f:
    json.dump(out, f, separators=(",", ":"))
    f.write("\n")
print(f"wrote {path}: {len(auc_cases)} auc, {len(gauc_cases)} gauc, "
      f"{len(grouped_cases)} grouped, {len(logloss_cases)} logloss, {len(list_cases)} list, "
      f"{len(topk_cases)} topk, {len(coverage_cases)} coverage, "
      f"{len(silhouette_cases)} silhouette cases")
