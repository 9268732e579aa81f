"""Writes the tiny fixture of configs/examples/csv-din.toml with pandas, as a user's own export
would look: `ratings.csv` (user_id, item_id, rating, timestamp; pandas' unnamed index column
first, timestamps as floats such as 978300760.0) and `items.csv` (item_id, genres "A|B", brand).

Synthetic and seeded (no public dataset in the repo): long-tailed user activity and item
popularity, each user drawn to two of six genres. Re-run only to change the fixture:
    python configs/examples/make_fixture.py
"""
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
rng = np.random.default_rng(7)
n_users, n_items, genres = 300, 120, ["Action", "Comedy", "Drama", "Horror", "Romance", "SciFi"]
item_genres = [rng.choice(len(genres), size=rng.integers(1, 3), replace=False) for _ in range(n_items)]
popularity = 1.0 / np.arange(1, n_items + 1) ** 0.8
rows = []
t0 = 978_300_000.0
for u in range(n_users):
    likes = rng.choice(len(genres), size=2, replace=False)
    n = int(min(80, 2 + rng.pareto(1.3) * 6))
    w = popularity * np.array([3.0 if set(g) & set(likes) else 0.5 for g in item_genres])
    items = rng.choice(n_items, size=n, replace=False, p=w / w.sum()) if n <= n_items else []
    ts = t0 + np.sort(rng.uniform(0, 3e7, size=len(items))).round()
    for i, t in zip(items, ts):
        fits = bool(set(item_genres[i]) & set(likes))
        rating = int(np.clip(rng.normal(4.0 if fits else 2.5, 1.0), 1, 5).round())
        rows.append((f"user{u:04d}", f"m{i:03d}", rating, float(t)))
ratings = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
ratings.to_csv(HERE / "ratings.csv")
items = pd.DataFrame(
    {
        "item_id": [f"m{i:03d}" for i in range(n_items)],
        "genres": ["|".join(genres[g] for g in sorted(item_genres[i])) for i in range(n_items)],
        "brand": [f"studio{int(rng.integers(0, 8))}" for _ in range(n_items)],
    }
)
items.to_csv(HERE / "items.csv", index=False)
print(f"{len(ratings)} ratings, {ratings.user_id.nunique()} users, {len(items)} items")
