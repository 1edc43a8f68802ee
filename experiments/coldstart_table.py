"""Mean +- sd over held-out draws of `kgrec cold-start` results (the README's cold-start table).

    python experiments/coldstart_table.py experiments/results/cold-start/items-seed*.json
"""

import json
import sys

import numpy as np

files = sys.argv[1:]
runs = [json.load(open(f)) for f in files]
settings = [("cold_only", ["recall@20", "ndcg@20"]), ("warm_only", ["recall@20", "ndcg@20"]),
            ("hybrid", ["recall@20", "ndcg@20", "cold recall@20", "cold ndcg@20", "cold share@20"])]  # fmt: skip
print(f"{len(runs)} draws: " + ", ".join(str(r["details"]["seed"]) for r in runs))
for setting, cols in settings:
    methods = [m for m in runs[0]["items"][setting] if all(m in r["items"][setting] for r in runs)]
    print(f"\n{setting}\n| method | " + " | ".join(cols) + " |\n|---|" + "---:|" * len(cols))
    for m in methods:
        cells = []
        for c in cols:
            v = np.array([r["items"][setting][m][c] for r in runs])
            cells.append(f"{v.mean():.4f} +- {v.std(ddof=1) if len(v) > 1 else 0:.4f}")
        print(f"| {m} | " + " | ".join(cells) + " |")
