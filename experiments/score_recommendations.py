"""Score a recommendation list against a test split, independently of kgrec.

This script is a cross-check: it shares no code with kgrec (standard library + pandas only), so
if kgrec's own metrics and this script agree, neither has a bug the other lacks. It can also
score the output of any other library run on an exported kgrec split.

Usage:
    python experiments/score_recommendations.py --recs recs.csv --test runs/X/split/test.csv [--ks 10,20,50]

Inputs:
    recs.csv  columns user,item,rank,score; rank is 1-based (1 = best) and unique per user.
    test.csv  columns user,item: the held-out relevant items.

Metrics, per user of test.csv, then averaged over those users (a user with no
recommendations scores 0 on everything); binary relevance, K = cut-off:
    recall@K    = hits in the top K / number of test items of the user
    precision@K = hits in the top K / K
    hit@K       = 1 if any hit in the top K else 0
    ndcg@K      = DCG / IDCG; DCG = sum over hits of 1 / log2(rank + 1);
                  IDCG = sum for i = 1 .. min(number of test items, K) of 1 / log2(i + 1)
    mrr@K       = 1 / rank of the first hit in the top K, else 0

Prints one JSON object, e.g. {"recall@10": 0.12, ..., "num_users": 943}.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

import pandas as pd


class InputError(Exception):
    """A problem with the files given on the command line."""


def read_test(path: str) -> dict[str, set[str]]:
    """user id -> set of relevant item ids."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    for column in ("user", "item"):
        if column not in table.columns:
            raise InputError(f"{path}: missing column {column!r}")
    relevant: dict[str, set[str]] = {}
    for user, item in zip(table["user"], table["item"]):
        relevant.setdefault(user, set()).add(item)
    return relevant


def read_recommendations(path: str) -> dict[str, list[tuple[int, str]]]:
    """user id -> list of (rank, item id), sorted by rank."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    for column in ("user", "item", "rank"):
        if column not in table.columns:
            raise InputError(f"{path}: missing column {column!r}")
    lists: dict[str, list[tuple[int, str]]] = {}
    for line, (user, item, rank_text) in enumerate(zip(table["user"], table["item"], table["rank"]), start=2):
        try:
            rank = int(rank_text)
        except ValueError:
            raise InputError(f"{path}, line {line}: rank {rank_text!r} is not an integer") from None
        if rank < 1:
            raise InputError(f"{path}, line {line}: rank must be 1 or more, got {rank}")
        lists.setdefault(user, []).append((rank, item))
    for user, ranked in lists.items():
        ranked.sort()
        ranks = [rank for rank, _ in ranked]
        if len(set(ranks)) != len(ranks):
            raise InputError(f"{path}: user {user!r} has the same rank twice")
    return lists


def score_user(ranked: list[tuple[int, str]], relevant: set[str], k: int) -> dict[str, float]:
    """The five metrics at cut-off k for one user."""
    hits = 0
    dcg = 0.0
    first_hit_rank = None
    for rank, item in ranked:
        if rank > k:
            break
        if item in relevant:
            hits += 1
            dcg += 1.0 / math.log2(rank + 1)
            if first_hit_rank is None:
                first_hit_rank = rank
    idcg = 0.0
    for i in range(1, min(len(relevant), k) + 1):
        idcg += 1.0 / math.log2(i + 1)
    return {
        "recall": hits / len(relevant),
        "precision": hits / k,
        "hit": 1.0 if hits > 0 else 0.0,
        "ndcg": dcg / idcg,
        "mrr": 1.0 / first_hit_rank if first_hit_rank is not None else 0.0,
    }


def score(recommendations: dict[str, list[tuple[int, str]]], test: dict[str, set[str]], ks: list[int]) -> dict:
    """Average the per-user metrics over the users of the test set."""
    names = ["recall", "precision", "hit", "ndcg", "mrr"]
    totals = {f"{name}@{k}": 0.0 for k in ks for name in names}
    for user, relevant in test.items():
        ranked = recommendations.get(user, [])
        for k in ks:
            for name, value in score_user(ranked, relevant, k).items():
                totals[f"{name}@{k}"] += value
    num_users = len(test)
    result = {key: (total / num_users if num_users else 0.0) for key, total in totals.items()}
    result["num_users"] = num_users
    return result


def parse_ks(text: str) -> list[int]:
    try:
        ks = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InputError(f"--ks must be comma-separated integers, got {text!r}") from None
    if not ks or min(ks) < 1:
        raise InputError(f"--ks must be positive integers, got {text!r}")
    return sorted(set(ks))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recs", required=True, help="CSV with columns user,item,rank,score")
    parser.add_argument("--test", required=True, help="CSV with columns user,item")
    parser.add_argument("--ks", default="10,20,50", help="comma-separated cut-offs (default 10,20,50)")
    args = parser.parse_args(argv)
    try:
        ks = parse_ks(args.ks)
        result = score(read_recommendations(args.recs), read_test(args.test), ks)
    except (InputError, OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
