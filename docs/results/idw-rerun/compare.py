#!/usr/bin/env python3
"""Pairs IDW runs of two batches by (dataset, variant, seed) and writes a markdown comparison.

    python3 docs/results/idw-rerun/compare.py OLD_ROOT NEW_ROOT OUT.md

OLD_ROOT and NEW_ROOT are searched for run folders named `<variant>-twotower-seed<N>` that carry
`metrics.json` and `run.json` (the dataset is read from the manifest, so any layout pairs up). Only standard-library
Python, so it runs anywhere the repository is checked out.

Written for the one-engine re-run (issue 16): the old batch ran on an H100 before the rewrite,
the new one on a CPU after it. Two tables per dataset:
1. old vs new per variant: means, the mean and spread of the paired per-seed differences, and
   how many seeds moved up;
2. the page's claims (IDW vs its unweighted start, MUR vs SUR) as paired per-seed differences
   inside each batch, so one can see whether a finding survives the re-run.
"""

import json
import math
import re
import sys
from pathlib import Path

METRICS = ["hr@20", "ndcg@20", "ndcg@20/item=head", "ndcg@20/item=tail", "full_ndcg@20"]
SYNTH_METRICS = ["full_hr@5", "full_hr@5/cluster=head", "full_hr@5/cluster=tail", "silhouette"]
# (treatment, control) pairs the page makes claims about; skipped when a batch lacks either.
CLAIMS = [
    ("mur", "sur"),
    ("sur-idw", "sur"),
    ("mur-idw", "mur"),
    ("mur-idw", "sur-idw"),
    ("mur-idw-m2", "mur-m2"),
    ("mur-idw-m3", "mur-m3"),
    ("mur-idw-m8", "mur-m8"),
    ("mur-idw-sliding", "mur-sliding"),
]
RUN = re.compile(r"^(?P<variant>.+)-twotower-seed(?P<seed>\d+)$")


def variant_of(block):
    """The variant of an experiment block: synthetic blocks are named `<variant>-skew<s>`, and
    the dataset name already says the skew."""
    return re.sub(r"-skew\d+_\d+$", "", block)


def write_atomic(out, lines):
    """Writes the lines to OUT through a temporary name, so a failed run leaves no half file."""
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(out)


def load(root):
    """{dataset: {variant: {seed: metrics}}}"""
    out = {}
    for path in sorted(Path(root).rglob("metrics.json")):
        run = path.parent
        m = RUN.match(run.name)
        if not m or not (run / "run.json").is_file():
            continue
        # the dataset comes from the manifest, so any folder layout pairs up
        manifest = json.loads((run / "run.json").read_text())
        dataset = manifest["dataset"]["name"]
        variant = variant_of(m["variant"])
        runs = out.setdefault(dataset, {}).setdefault(variant, {})
        seed = int(m["seed"])
        if seed in runs:
            sys.exit(f"{root}: two runs of {dataset} / {variant} / seed {seed} (second: {run})")
        metrics = json.loads(path.read_text())
        retrieval = manifest.get("retrieval") or {}
        # What the IDW schedule chose, beside the metrics (keys no metric has).
        metrics["_idw_selected"] = retrieval.get("idw_selected")
        metrics["_calibration_kept"] = retrieval.get("calibration_kept")
        runs[seed] = metrics
    return out


def mean(xs):
    return sum(xs) / len(xs)


def std(xs):
    if len(xs) < 2:
        return float("nan")
    m = mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def paired(a, b, metric):
    """Per-seed differences a - b over the seeds both have the metric for."""
    seeds = sorted(s for s in set(a) & set(b) if metric in a[s] and metric in b[s])
    return [a[s][metric] - b[s][metric] for s in seeds]


def fmt_diff(d):
    if not d:
        return "n/a"
    up = sum(x > 0 for x in d)
    down = sum(x < 0 for x in d)
    same = len(d) - up - down
    ties = f" {same}=" if same else ""
    return f"{mean(d):+.4f} ± {std(d):.4f} ({up}↑ {down}↓{ties} of {len(d)})"


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    old, new, out = load(sys.argv[1]), load(sys.argv[2]), Path(sys.argv[3])
    lines = [
        "# IDW re-run: old batch vs new batch, paired by seed",
        "",
        f"Written by `compare.py {sys.argv[1]} {sys.argv[2]} {sys.argv[3]}`. "
        "`d` = mean ± std of the per-seed differences; ↑/↓/= count the seeds that moved up, down or not at all.",
        "",
    ]
    for ds in sorted(new):
        if ds not in old:
            continue
        metrics = SYNTH_METRICS if ds.startswith("synthetic") else METRICS
        lines += [f"## {ds}", "", "### New minus old, per variant", ""]
        lines.append("| variant | seeds | " + " | ".join(f"{m} old → new (d)" for m in metrics) + " |")
        lines.append("| --- | ---: | " + " | ".join("---" for _ in metrics) + " |")
        for variant in sorted(new[ds]):
            if variant not in old[ds]:
                continue
            a, b = new[ds][variant], old[ds][variant]
            cells = []
            for m in metrics:
                d = paired(a, b, m)
                if not d:
                    cells.append("n/a")
                    continue
                seeds = [s for s in sorted(set(a) & set(b)) if m in a[s] and m in b[s]]
                o = mean([b[s][m] for s in seeds])
                n = mean([a[s][m] for s in seeds])
                cells.append(f"{o:.4f} → {n:.4f} ({fmt_diff(d)})")
            n_seeds = len(set(a) & set(b))
            lines.append(f"| {variant} | {n_seeds} | " + " | ".join(cells) + " |")
        heads = {
            v: (mean([r.get("lists/item=head", float("nan")) for r in old[ds][v].values()]),
                mean([r.get("lists/item=head", float("nan")) for r in new[ds][v].values()]))
            for v in new[ds] if v in old[ds]
        }
        if heads:
            o, n = next(iter(heads.values()))
            if not (math.isnan(o) or math.isnan(n)):
                lines += ["", f"Test cases whose target is a head item: {o:.0f} old, {n:.0f} new "
                          "(the head/tail rule changed with the engine rewrite)."]
        idw_variants = [v for v in sorted(new[ds]) if v in old[ds]
                        and any(r["_idw_selected"] is not None for r in new[ds][v].values())]
        if idw_variants:
            lines += ["", "### What IDW kept (per seed, in seed order)", "",
                      "| variant | kept iteration old | new | calibration kept old | new |",
                      "| --- | --- | --- | --- | --- |"]
            for v in idw_variants:
                def col(batch, key):
                    return ", ".join(str(batch[ds][v][s][key]) for s in sorted(batch[ds][v]))
                lines.append(f"| {v} | {col(old, '_idw_selected')} | {col(new, '_idw_selected')} "
                             f"| {col(old, '_calibration_kept')} | {col(new, '_calibration_kept')} |")
        lines += ["", "### The page's claims inside each batch (treatment minus control, per seed)", ""]
        lines.append("| claim | metric | old batch d | new batch d |")
        lines.append("| --- | --- | --- | --- |")
        for t, c in CLAIMS:
            for m in metrics:
                cells = []
                for batch in (old, new):
                    v = batch.get(ds, {})
                    cells.append(fmt_diff(paired(v[t], v[c], m)) if t in v and c in v else "n/a")
                if cells == ["n/a", "n/a"]:
                    continue
                lines.append(f"| {t} − {c} | {m} | {cells[0]} | {cells[1]} |")
        lines.append("")
    write_atomic(out, lines)


if __name__ == "__main__":
    main()
