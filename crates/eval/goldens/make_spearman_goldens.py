#!/usr/bin/env python3
"""Reference values of Spearman's rank correlation for longtail-eval, computed with scipy.

Writes spearman.json (inputs AND expected values) next to this script; the Rust test
crates/eval/tests/it/goldens.rs (`spearman_matches_scipy`) reads it and compares to 1e-12.
A separate script from make_goldens.py so that adding these cases leaves goldens.json as it was.
CI never runs Python.

Regenerate (only when adding cases):
    python3 -m venv /tmp/goldvenv && /tmp/goldvenv/bin/pip install -q numpy scipy
    /tmp/goldvenv/bin/python crates/eval/goldens/make_spearman_goldens.py

Cases cover what IDW's diagnostic feeds it: item frequencies (many ties: integer counts, most
items seen once or twice) against densities (continuous), plus small hand-checkable cases.
"""
import json
import os

import numpy as np
import scipy
from scipy.stats import spearmanr

rng = np.random.default_rng(20261203)
cases = []


def add(name, x, y):
    x = [float(v) for v in x]
    y = [float(v) for v in y]
    rho = spearmanr(x, y).statistic
    cases.append({"name": name, "x": x, "y": y,
                  "expected": None if np.isnan(rho) else float(rho)})


add("hand_no_ties", [1, 2, 3, 4], [1, 3, 2, 4])
add("hand_ties_both", [1, 1, 2, 3, 3, 3], [5, 6, 6, 1, 2, 2])
add("reversed", [1, 2, 3, 4, 5], [9, 7, 5, 3, 1])
add("constant_x", [2, 2, 2], [1, 2, 3])
for n in (10, 200, 1000):
    freq = rng.zipf(1.6, size=n).clip(max=5000)  # heavy-tailed counts, many ties at 1, 2
    noise = rng.normal(size=n)
    dens = np.log(freq) * 0.5 + noise  # a density loosely tied to frequency
    add(f"zipf_counts_vs_density_n{n}", freq, dens)
    add(f"zipf_counts_vs_independent_n{n}", freq, rng.random(n))

out = {"scipy": scipy.__version__, "numpy": np.__version__, "cases": cases}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "spearman.json")
with open(path + ".tmp", "w") as f:
    json.dump(out, f)
os.replace(path + ".tmp", path)
print(f"wrote {len(cases)} cases to {path}")
