"""Write kgrec's leave-one-out sequences of a graph, in kgrec's order, for RecBole's SASRec.

    .venv/bin/python experiments/sasrec_sequences_export.py --graph graphs/ml-100k \\
        --config experiments/ml-100k-sasrec.toml --out data/cache/recbole-seq/ml-100k-loo

Writes ``OUT/sequences.csv`` (columns ``user, item, part, position``; raw ids; ``part`` is
``train``, ``valid`` or ``test``; ``position`` counts from 0 along the user's history) from the
very split and order a kgrec sequential run uses: the config's split (``kgrec.runs.split_for``:
leave-one-out by time) and :func:`kgrec.train.sequences.ordered_histories` (time, ties by item
position). RecBole never sees a timestamp, so it cannot break ties another way:
``experiments/recbole_sasrec.py`` (in RecBole's venv) builds its benchmark files from this one.
The folder is under the git-ignored ``data/cache/``: it holds the licensed data's interactions.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from kgrec.experiment import load_experiment
from kgrec.graph.container import ITEM, USER
from kgrec.graph.store import load_graph
from kgrec.runs import split_for
from kgrec.train.sequences import ordered_histories, timed_pairs
from kgrec.train.view import target_pairs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graph", type=Path, required=True)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    target = args.out / "sequences.csv"
    if target.exists() and not args.force:
        print(f"{target} exists (use --force to write it again)", file=sys.stderr)
        return 2
    config = load_experiment(args.config)
    kg = load_graph(args.graph)
    split = split_for(kg, config, log=lambda *_: None)
    times = target_pairs(kg, config.train.target_events)
    history = ordered_histories(timed_pairs(pd.concat([split.train, split.valid, split.test]), times), kg.num_users)
    part = {}
    for name, frame in split.parts().items():
        part.update({(u, i): name for u, i in zip(frame["user"].to_numpy(), frame["item"].to_numpy())})
    users, items = kg.nodes[USER]["id"].tolist(), kg.nodes[ITEM]["id"].tolist()
    rows = [(users[u], items[i], part[(u, int(i))], k) for u, seq in enumerate(history) for k, i in enumerate(seq)]
    table = pd.DataFrame(rows, columns=["user", "item", "part", "position"])
    # The held-out items end each history: the split and the order agree (kgrec's tie rule).
    last = table.groupby("user").tail(2)
    assert set(last["part"]) <= {"valid", "test"} or len(table) == 0
    args.out.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".csv.partial")
    table.to_csv(partial, index=False)
    partial.replace(target)
    print(f"{len(table):,} interactions of {table['user'].nunique():,} users written to {target} "
          f"({(table['part'] == 'test').sum():,} test, {(table['part'] == 'valid').sum():,} valid)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
