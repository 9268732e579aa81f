#!/usr/bin/env python3
"""Paired per-seed comparisons inside one batch of IDW runs (issue 18, the second reading).

    python3 docs/results/idw-second/pairs.py OUT.md ROOT [ROOT ...]

Every ROOT is searched for run folders `<block>-twotower-seed<N>` with `metrics.json` and
`run.json` (the loader is idw-rerun/compare.py's, so the layouts it accepts work here). Writes,
per dataset:
1. each variant's mean ± std over seeds of the page's metrics;
2. the claims of the second reading (treatment minus control, paired by seed, with how many
   seeds moved up or down): IDW against its null control, against the plain MUR, the two
   readings of eq. 10 against each other, MUR against SUR at each width;
3. what each IDW run did: the iteration validation kept, how many wake phases ran, the epochs
   trained in all (the extra training the null control matches), the kept model's validation
   NDCG@20 (what the density options are chosen on), and the first sleep phase's
   diagnostics (self-term share, density-frequency rank correlation, head items' loss share
   with and without the weights, most- over least-frequent per-sample weight).
Only standard-library Python.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "idw-rerun"))
from compare import RUN, fmt_diff, load, mean, paired, std, variant_of, write_atomic  # noqa: E402

METRICS = ["ndcg@20", "ndcg@20/item=head", "ndcg@20/item=tail", "hr@20", "full_ndcg@20"]
SYNTH_METRICS = ["full_hr@5", "full_hr@5/cluster=head", "full_hr@5/cluster=tail",
                 "full_all_hr@5", "full_all_ndcg@20", "silhouette"]
CLAIMS = [
    ("mur-idw", "idw-null"),
    ("mur-idw", "mur"),
    ("idw-null", "mur"),
    ("mur-idw-literal", "idw-null"),
    ("mur-idw-literal", "mur-idw"),
    ("mur-idw-old", "idw-null-old"),
    ("mur-idw-old", "mur"),
    ("idw-null-old", "mur"),
    ("mur-idw-loo", "mur-idw"),
    ("mur-idw-bw2", "mur-idw"),
    ("mur", "sur"),
    ("mur-d2", "sur-d2"),
    ("mur-d4", "sur-d4"),
    ("mur-d8", "sur-d8"),
]


def schedules(roots):
    """{dataset: {variant: {seed: summary of the IDW schedule}}} from the manifests."""
    out = {}
    for root in roots:
        for path in sorted(Path(root).rglob("run.json")):
            m = RUN.match(path.parent.name)
            if not m:
                continue
            r = json.loads(path.read_text())
            ret = r.get("retrieval") or {}
            iters = ret.get("idw") or []
            if not iters:
                continue
            variant = variant_of(m["variant"])
            first = iters[0]
            sleep, diag = first.get("sleep", {}), first.get("diagnostics", {})
            phases = ret.get("phases", [])
            epochs = sum(len(ph[1]) for ph in phases if ph[0] != "calibration")
            # The kept model's validation NDCG@20: the best epoch of the phases selection chose
            # among (calibration only when it was kept), the figure leave-one-out and the
            # bandwidth are chosen on.
            valid = max(e["valid"]["ndcg@20"] for ph in phases
                        if ph[0] != "calibration" or ret.get("calibration_kept")
                        for e in ph[1])
            wakes = sum(1 for ph in ret.get("phases", []) if ph[0].startswith("wake"))
            out.setdefault(r["dataset"]["name"], {}).setdefault(variant, {})[int(m["seed"])] = {
                "kept": ret.get("idw_selected"),
                "wakes": wakes,
                "epochs": epochs,
                "valid": valid,
                "self_share_median": sleep.get("self_share_median"),
                "self_share_sparsest": sleep.get("self_share_sparsest"),
                "spearman": diag.get("density_frequency_spearman"),
                "head_share": diag.get("head_loss_share"),
                "head_share_unweighted": diag.get("head_loss_share_unweighted"),
                "weight_ratio": diag.get("most_over_least_frequent_weight"),
            }
    return out


def mean_cell(xs, digits=4):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "n/a"
    s = std(xs) if len(xs) > 1 else 0.0
    return f"{mean(xs):.{digits}f} ± {s:.{digits}f}"


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out, roots = Path(sys.argv[1]), sys.argv[2:]
    batch = {}
    for root in roots:
        for ds, variants in load(root).items():
            for v, seeds in variants.items():
                have = batch.setdefault(ds, {}).setdefault(v, {})
                clash = set(have) & set(seeds)
                if clash:
                    sys.exit(f"{ds} / {v}: seeds {sorted(clash)} appear under two roots")
                have.update(seeds)
    sched = schedules(roots)
    lines = [
        "# IDW second reading: paired per-seed comparisons",
        "",
        f"Written by `pairs.py {' '.join(sys.argv[1:])}`. `d` = mean ± std of the per-seed "
        "differences (treatment − control); ↑/↓/= count the seeds that moved up, down or not at all.",
        "",
    ]
    for ds in sorted(batch):
        metrics = SYNTH_METRICS if ds.startswith("synthetic") else METRICS
        lines += [f"## {ds}", "", "### Per variant (mean ± std over seeds)", ""]
        lines.append("| variant | seeds | " + " | ".join(metrics) + " |")
        lines.append("| --- | --- | " + " | ".join("---" for _ in metrics) + " |")
        for v in sorted(batch[ds]):
            runs = batch[ds][v]
            cells = [mean_cell([runs[s].get(m) for s in runs]) for m in metrics]
            seeds = ",".join(str(s) for s in sorted(runs))
            lines.append(f"| {v} | {seeds} | " + " | ".join(cells) + " |")
        rows = []
        for t, c in CLAIMS:
            if t not in batch[ds] or c not in batch[ds]:
                continue
            for m in metrics:
                d = paired(batch[ds][t], batch[ds][c], m)
                if d:
                    rows.append(f"| {t} − {c} | {m} | {fmt_diff(d)} |")
        if rows:
            lines += ["", "### Claims (paired by seed)", "", "| claim | metric | d |",
                      "| --- | --- | --- |"] + rows
        if ds in sched:
            lines += ["", "### What each IDW run did (per seed, in seed order; sleep-phase "
                      "diagnostics of the first sleep phase)", "",
                      "| variant | kept iteration | valid NDCG@20 of the kept model | wake phases | epochs (all phases but calibration) "
                      "| self share median / sparsest | density-frequency spearman "
                      "| head-item loss share weighted / unweighted | most / least frequent weight |",
                      "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
            for v in sorted(sched[ds]):
                s = sched[ds][v]
                seeds = sorted(s)

                def col(key):
                    return ", ".join(str(s[x][key]) for x in seeds)

                def avg(key, digits=3):
                    return mean_cell([s[x][key] for x in seeds], digits)

                lines.append(
                    f"| {v} | {col('kept')} | {avg('valid', 4)} | {col('wakes')} | {col('epochs')} "
                    f"| {avg('self_share_median')} / {avg('self_share_sparsest')} "
                    f"| {avg('spearman')} | {avg('head_share')} / {avg('head_share_unweighted')} "
                    f"| {avg('weight_ratio', 2)} |")
        lines.append("")
    write_atomic(out, lines)


if __name__ == "__main__":
    main()
