"""The cold-start-item protocol on MovieLens-100K (see kgrec/coldstart/protocol.py).

Holds out 10% of the films with all of their ratings, trains ``experiments/ml-100k.toml`` on the
rest, embeds the held-out films from their description and Freebase triples without
retraining, and ranks them for the users who rated them, next to popularity and a text-only
(BERT cosine) recommender. Needs ``graphs/ml-100k`` (``make ml-100k`` builds it).

    python experiments/cold_start_ml100k.py [--out runs/cold-start-ml-100k] [--seed 2024]

The warm run is reused when it exists, so a second call only re-scores (seconds).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kgrec.coldstart.protocol import run_cold_start  # noqa: E402
from kgrec.config import load_experiment  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graph", default=str(ROOT / "graphs" / "ml-100k"))
    parser.add_argument("--config", default=str(ROOT / "experiments" / "ml-100k.toml"))
    parser.add_argument("--out", default=str(ROOT / "runs" / "cold-start-ml-100k"))
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()

    config = load_experiment(Path(args.config))
    result = run_cold_start(Path(args.graph), config, Path(args.out), fraction=args.fraction, seed=args.seed, progress=False)
    d = result.details
    print(
        f"\nMovieLens-100K cold-start items: {d['cold_items']} films held out with their "
        f"{d['held_out_interactions']:,} ratings; {d['users_evaluated']} users rank the held-out films"
    )
    print(result.format(ks=(10, 20, 50)))
    print("\nwhole catalogue (warm and cold films together; the user's warm films masked):")
    print(result.format(ks=(20, 50), catalogue=True))
    print(f"\nwarm model's own test metrics: recall@20 {d['warm_test']['recall@20']:.4f}, ndcg@20 {d['warm_test']['ndcg@20']:.4f}")
    print(f"written to {Path(args.out) / 'cold_start.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
