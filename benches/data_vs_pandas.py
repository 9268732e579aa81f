#!/usr/bin/env python3
"""The import + prepare workload of longtail's data worker (`longtail_train::bench::workers::
data_worker`; `data_bench` or `longtail bench worker data` run it) in pandas/numpy, timed the same
way: the peer of the `data/<dataset>/import` and `data/<dataset>/prepare` figures.

Usage: data_vs_pandas.py --dataset ml-1m|movietweetings --out DIR [--repeats 3] [--seed 0]
       [--longtail-dir PREPARED_DIR]

Input: $LONGTAIL_DATA_DIR (default ../shared/data) / ml-1m/ratings_users1-2999.dat.gz or
movietweetings-100k/ratings.dat, lines `user::item::rating::ts`.

import  (timed alone): pd.read_csv with sep=":" (the C parser; `::` gives empty columns 1, 3, 5,
        which usecols drops), ids kept as strings (MovieTweetings item ids have leading zeros),
        then pd.factorize (dense ids by first appearance, +1 so that 0 is padding).
prepare (timed end to end, import included, like longtail's `prepare`):
  * positive = rating > 3 (ml-1m) / > 6 (MovieTweetings); other rows are not samples;
  * each user's positives in time order (stable: ties keep file order); hist_end = number of the
    user's positives strictly before the sample's time;
  * random split of the positives: test with probability 0.2, valid 0.1, else train (numpy's
    PCG64, so the draws differ from longtail's per-user ChaCha streams: counts differ slightly);
  * 5 negatives per positive, uniform over 1..num_items minus every item the user interacted with
    (any rating), by vectorised rejection sampling (redraw the rejected ones until none is left);
  * user group by train positives (tail <= 2 < body <= 5 < head), item group head = the top 20%
    (rounded up) of items with train positives by train frequency, ties by smaller id;
  * writes interactions.parquet (user item ts rating), user_vocab.json / item_vocab.json,
    samples/{train,valid,test}.parquet (user item label ts hist_end user_group item_group, the
    same dtypes as longtail, snappy) and a small prepare.json with the counts, under DIR/prepared,
    each file fsync'ed like longtail's. longtail also writes feature_map.json, computes SHA-256
    content hashes of the input and output tables, and writes to a temporary folder renamed at
    the end; pandas does none of these.

Prints one JSON object, the schema every side prints: {"figures": {"data/<ds>/import": {"ms"
(median of --repeats), "best_ms", "rows_per_s" (rows / median s), "rows"}, "data/<ds>/prepare":
{"ms", "best_ms", "rows_per_s", "rows", "positives", "samples", "peak_rss_mb", "rss_before_mb"}}}.
Memory, in MiB: VmHWM (the process's peak resident set, interpreter and imported modules included,
the import runs too) at the end, and VmRSS after `import pandas, pyarrow` before any work, both from
/proc/self/status as on longtail's side. With --longtail-dir (longtail's prepared folder of the same
dataset) it checks, outside the timings, that both sides have the same dense ids, positives and
hist_end values (the split and negatives are random on both sides): the prepare figure gains
`ids_match` (1 or 0) and the script exits 1 on a mismatch. Versions go to stderr.
"""
import argparse
import json
import math
import os
import platform
import statistics
import sys
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

DATASETS = {
    "ml-1m": ("ml-1m/ratings_users1-2999.dat.gz", 3.0),
    "movietweetings": ("movietweetings-100k/ratings.dat", 6.0),
}
NEG_PER_POS = 5
VALID, TEST = 0.1, 0.2
TAIL_MAX, BODY_MAX = 2, 5
HEAD_ITEM_SHARE = 0.2


def proc_status_kb(key):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def do_import(path):
    """Raw file -> (DataFrame user item rating ts with dense ids, user_vocab, item_vocab)."""
    raw = pd.read_csv(path, sep=":", header=None, usecols=[0, 2, 4, 6],
                      names=["user", "_a", "item", "_b", "rating", "_c", "ts"],
                      dtype={"user": str, "item": str, "rating": np.float32, "ts": np.int64},
                      engine="c")
    ucodes, uvocab = pd.factorize(raw["user"], sort=False)
    icodes, ivocab = pd.factorize(raw["item"], sort=False)
    df = pd.DataFrame({
        "user": (ucodes + 1).astype(np.uint32),
        "item": (icodes + 1).astype(np.uint32),
        "ts": raw["ts"].to_numpy(),
        "rating": raw["rating"].to_numpy(),
    })
    return df, [""] + list(uvocab), [""] + list(ivocab)


def sample_negatives(rng, users, num_items, seen_keys):
    """For each entry of `users`, NEG_PER_POS items uniform over 1..num_items-1 minus the user's
    seen items (`seen_keys` = sorted unique user * num_items + item). Rejection, vectorised."""
    u = np.repeat(users.astype(np.int64), NEG_PER_POS)
    neg = rng.integers(1, num_items, size=u.size, dtype=np.int64)
    todo = np.arange(u.size)
    while todo.size:
        keys = u[todo] * num_items + neg[todo]
        pos = np.searchsorted(seen_keys, keys)
        pos[pos == seen_keys.size] = 0
        hit = seen_keys[pos] == keys
        todo = todo[hit]
        neg[todo] = rng.integers(1, num_items, size=todo.size, dtype=np.int64)
    return neg.astype(np.uint32)


def fsync(path):
    """Flushes a written file to disk, as longtail does for every file it writes."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_parquet(df, path):
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, compression="snappy")
    fsync(path)


def do_prepare(path, threshold, out, seed):
    """The whole job; returns (counts dict, import seconds)."""
    t0 = time.perf_counter()
    df, uvocab, ivocab = do_import(path)
    import_s = time.perf_counter() - t0
    rng = np.random.default_rng(seed)
    num_users, num_items = len(uvocab), len(ivocab)  # padding included

    # Every item a user interacted with (any rating): never a negative for that user.
    seen_keys = np.unique(df["user"].to_numpy(np.int64) * num_items + df["item"].to_numpy(np.int64))
    # Users who have seen every item get no negatives (nothing to draw).
    n_seen = np.bincount(seen_keys // num_items, minlength=num_users)

    pos = df[df["rating"].to_numpy() > threshold]
    pos = pos.sort_values(["user", "ts"], kind="stable")  # multi-key sort is stable (lexsort)
    pu = pos["user"].to_numpy()
    pi = pos["item"].to_numpy()
    pt = pos["ts"].to_numpy()
    n_pos = pu.size
    # hist_end: rank in the user's sequence minus the rank inside the (user, ts) tie group.
    idx_in_user = pos.groupby("user", sort=False).cumcount().to_numpy()
    idx_in_tie = pos.groupby(["user", "ts"], sort=False).cumcount().to_numpy()
    hist_end = (idx_in_user - idx_in_tie).astype(np.uint32)

    r = rng.random(n_pos)
    split = np.where(r < TEST, 2, np.where(r < TEST + VALID, 1, 0)).astype(np.uint8)

    train = split == 0
    user_train = np.bincount(pu[train], minlength=num_users)
    ugroup_of_user = np.where(user_train <= TAIL_MAX, 0,
                              np.where(user_train <= BODY_MAX, 1, 2)).astype(np.uint8)
    item_freq = np.bincount(pi[train], minlength=num_items)
    item_freq[0] = 0
    nz = np.flatnonzero(item_freq)
    n_head = math.ceil(nz.size * HEAD_ITEM_SHARE)
    order = nz[np.lexsort((nz, -item_freq[nz]))]  # frequency descending, then id ascending
    igroup_of_item = np.zeros(num_items, np.uint8)
    igroup_of_item[order[:n_head]] = 1

    # Negatives: only for positives of users with something left to draw.
    has_cand = n_seen[pu] < num_items - 1
    k = 1 + NEG_PER_POS * has_cand.astype(np.int64)  # rows per positive
    negs = sample_negatives(rng, pu[has_cand], num_items, seen_keys)
    rows = np.repeat(np.arange(n_pos), k)
    first = np.zeros(rows.size, bool)
    starts = np.concatenate(([0], np.cumsum(k)[:-1]))
    first[starts] = True
    item = np.empty(rows.size, np.uint32)
    item[first] = pi
    item[~first] = negs
    samples = pd.DataFrame({
        "user": pu[rows],
        "item": item,
        "label": first.astype(np.float32),
        "ts": pt[rows],
        "hist_end": hist_end[rows],
        "user_group": ugroup_of_user[pu[rows]],
        "item_group": igroup_of_item[item],
    })
    sample_split = split[rows]

    sdir = os.path.join(out, "samples")
    os.makedirs(sdir, exist_ok=True)
    write_parquet(df[["user", "item", "ts", "rating"]], os.path.join(out, "interactions.parquet"))
    for name, vocab in (("user_vocab.json", uvocab), ("item_vocab.json", ivocab)):
        with open(os.path.join(out, name), "w") as f:
            json.dump(vocab, f)
        fsync(os.path.join(out, name))
    counts = {"rows": len(df), "users": num_users - 1, "items": num_items - 1,
              "positives": int(n_pos), "samples": len(samples)}
    for code, name in enumerate(("train", "valid", "test")):
        part = samples[sample_split == code]
        write_parquet(part, os.path.join(sdir, name + ".parquet"))
        lab = part["label"].to_numpy() > 0.5
        counts[name] = {
            "samples": len(part),
            "positives": int(lab.sum()),
            "user_groups": np.bincount(part["user_group"].to_numpy(), minlength=3).tolist(),
            "item_groups": np.bincount(part["item_group"].to_numpy(), minlength=2).tolist(),
        }
    active = user_train[user_train > 0]
    counts["users_per_group"] = [int((active <= TAIL_MAX).sum()),
                                 int(((active > TAIL_MAX) & (active <= BODY_MAX)).sum()),
                                 int((active > BODY_MAX).sum())]
    counts["head_items"] = int(n_head)
    with open(os.path.join(out, "prepare.json"), "w") as f:
        json.dump(counts, f, indent=1)
    fsync(os.path.join(out, "prepare.json"))
    return counts, import_s


def check_against(prepared, longtail_dir):
    """Same dense ids, positives and hist_end as longtail (outside the timings)."""
    cols = ["user", "item", "ts", "hist_end"]

    def positives(d):
        parts = [pd.read_parquet(os.path.join(d, "samples", s + ".parquet"))
                 for s in ("train", "valid", "test")]
        p = pd.concat(parts)
        p = p[p["label"] > 0.5][cols]
        return p.sort_values(cols).reset_index(drop=True)

    a, b = positives(prepared), positives(longtail_dir)
    same_pos = a.shape == b.shape and bool((a.to_numpy() == b.to_numpy()).all())
    vocab_same = all(
        json.load(open(os.path.join(prepared, v))) == json.load(open(os.path.join(longtail_dir, v)))
        for v in ("user_vocab.json", "item_vocab.json"))
    return {"positives_and_hist_end_match": same_pos, "vocabularies_match": vocab_same,
            "match": same_pos and vocab_same}


def mb(kb):
    return kb / 1024.0 if kb is not None else None


def figure(times, extras):
    fig = {"ms": statistics.median(times) * 1e3, "best_ms": min(times) * 1e3}
    fig.update({k: float(v) for k, v in extras.items() if v is not None})
    return fig


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--dataset", required=True, choices=sorted(DATASETS))
    ap.add_argument("--out", required=True)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--longtail-dir", help="longtail's prepared folder of the same dataset")
    a = ap.parse_args()
    rss_before_kb = proc_status_kb("VmRSS")
    if a.repeats < 1:
        sys.exit("--repeats must be at least 1")
    rel, threshold = DATASETS[a.dataset]
    data_dir = os.environ.get("LONGTAIL_DATA_DIR", "../shared/data")
    path = os.path.join(data_dir, rel)
    if not os.path.isfile(path):
        sys.exit(f"{path} not found (set LONGTAIL_DATA_DIR to the folder holding {rel})")
    prepared = os.path.join(a.out, "prepared")
    os.makedirs(prepared, exist_ok=True)

    import_times, prepare_times, rows = [], [], None
    for _ in range(a.repeats):
        t = time.perf_counter()
        df, _, _ = do_import(path)
        import_times.append(time.perf_counter() - t)
        rows = len(df)
        del df
    for _ in range(a.repeats):
        t = time.perf_counter()
        counts, _ = do_prepare(path, threshold, prepared, a.seed)
        prepare_times.append(time.perf_counter() - t)
    peak_kb = proc_status_kb("VmHWM")
    if peak_kb is None:  # no procfs: ru_maxrss is the same peak, in kB on Linux
        import resource
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    prep = {
        "rows_per_s": rows / statistics.median(prepare_times), "rows": rows,
        "positives": counts["positives"], "samples": counts["samples"],
        "peak_rss_mb": mb(peak_kb), "rss_before_mb": mb(rss_before_kb),
    }
    ok = True
    if a.longtail_dir:
        check = check_against(prepared, a.longtail_dir)
        prep["ids_match"] = 1.0 if check["match"] else 0.0
        if not check["match"]:
            print(f"data_vs_pandas: {a.dataset}: differs from {a.longtail_dir}: {check}",
                  file=sys.stderr)
            ok = False
    figs = {
        f"data/{a.dataset}/import": figure(
            import_times, {"rows_per_s": rows / statistics.median(import_times), "rows": rows}),
        f"data/{a.dataset}/prepare": figure(prepare_times, prep),
    }
    print(f"data_vs_pandas: python {platform.python_version()}, numpy {np.__version__}, "
          f"pandas {pd.__version__}, pyarrow {pa.__version__}", file=sys.stderr)
    print(json.dumps({"figures": figs}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
