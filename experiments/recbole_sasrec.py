"""RecBole 1.2.1's SASRec on kgrec's own leave-one-out sequences, for the side-by-side check.

Runs in RecBole's venv (how to make it: ``experiments/recbole_split.py``), from the repository
root, after ``experiments/sasrec_sequences_export.py`` has written kgrec's sequences::

    /work/recbole-venv/bin/python experiments/recbole_sasrec.py \\
        --sequences data/cache/recbole-seq/ml-100k-loo/sequences.csv --epochs 5 --out /tmp/recbole-sasrec.json

What RecBole gets: benchmark files (``benchmark_filename = [train, valid, test]``) written from
kgrec's histories, one row per training prefix (RecBole's own data augmentation: every item
after a user's first is a target, with up to 50 items before it), one validation row per user
(history: the training items) and one test row (history: training + validation items). The
order is kgrec's, so ties in time cannot be broken differently. Model and training: SASRec with
RecBole 1.2.1's defaults (``properties/model/SASRec.yaml``: 2 layers, 2 heads, hidden 64,
inner 256, dropout 0.5 on hidden and attention, CE loss, max length 50; ``overall.yaml``:
Adam, lr 0.001, train batch 2048), seed 2020 through ``init_seed`` as ``run_recbole`` does.

Both libraries are compared after the same number of epochs (no selection: the weights after
the last epoch). Metrics: computed here the way kgrec computes them, full ranking over all
items with the user's training and validation items masked (RecBole's own full-sort evaluation
of sequential models masks nothing, so its figures are printed too, unmasked, for reference).
Seconds per epoch: training only, ``trainer._train_epoch``, 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

RECBOLE_VERSION = "1.2.1"
KS = (10, 20)


def import_recbole():
    import numpy as np

    for name, value in (("float_", np.float64), ("complex_", np.complex128), ("unicode_", np.str_)):
        if not hasattr(np, name):
            setattr(np, name, value)
    try:
        import recbole
    except ImportError as error:
        sys.exit(f"recbole_sasrec.py: error: RecBole is not importable with {sys.executable} ({error})")
    if recbole.__version__ != RECBOLE_VERSION:
        sys.exit(f"recbole_sasrec.py: error: RecBole {RECBOLE_VERSION} expected, found {recbole.__version__}")
    return recbole


def write_benchmark(sequences: Path, folder: Path, max_len: int) -> dict:
    """``folder/NAME/NAME.{train,valid,test}.inter`` from kgrec's sequences; returns counts."""
    import pandas as pd

    table = pd.read_csv(sequences, dtype={"user": str, "item": str}).sort_values(["user", "position"], kind="stable")
    rows = {"train": [], "valid": [], "test": []}
    for user, frame in table.groupby("user", sort=True):
        items, parts = frame["item"].tolist(), frame["part"].tolist()
        for k in range(1, len(items)):
            rows[parts[k]].append((user, " ".join(items[max(0, k - max_len) : k]), items[k]))
    name = folder.name
    for part, part_rows in rows.items():
        with open(folder / f"{name}.{part}.inter", "w", encoding="utf-8") as f:
            f.write("user_id:token\titem_id_list:token_seq\titem_id:token\n")
            f.writelines(f"{u}\t{h}\t{i}\n" for u, h, i in part_rows)
    return {part: len(part_rows) for part, part_rows in rows.items()}


def masked_metrics(model, test_data, dataset, seen: dict[int, set[int]], device) -> dict[str, float]:
    """kgrec's protocol: full ranking, training + validation items masked, one test item per user."""
    import torch

    sums = {f"{m}@{k}": 0.0 for m in ("recall", "ndcg") for k in KS}
    users = 0
    model.eval()
    with torch.no_grad():
        for batch in test_data:
            interaction = batch[0].to(device)
            scores = model.full_sort_predict(interaction).view(len(interaction), -1)
            scores[:, 0] = -math.inf  # the padding item
            uids = interaction[dataset.uid_field].tolist()
            targets = interaction[dataset.iid_field]
            for row, uid in enumerate(uids):
                scores[row, list(seen[uid])] = -math.inf
            target_scores = scores.gather(1, targets.view(-1, 1))
            rank = (scores > target_scores).sum(1)  # 0 = first
            for k in KS:
                hit = (rank < k).float()
                sums[f"recall@{k}"] += float(hit.sum())
                sums[f"ndcg@{k}"] += float((hit / torch.log2(rank.float() + 2)).sum())
            users += len(uids)
    return {key: value / users for key, value in sums.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=2020, help="RecBole's seed (default: its own, 2020)")
    args = parser.parse_args(argv)
    recbole = import_recbole()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    sys.argv = sys.argv[:1]  # RecBole's Config reads --key=value arguments from the command line
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory(prefix="recbole-sasrec-") as scratch:
        data = Path(scratch) / "kgrec-loo"
        data.mkdir()
        counts = write_benchmark(args.sequences, data, 50)
        config = Config(
            model="SASRec",
            dataset="kgrec-loo",
            config_dict={
                "use_gpu": False,
                "checkpoint_dir": str(Path(scratch) / "saved"),
                "data_path": scratch,
                "benchmark_filename": ["train", "valid", "test"],
                "load_col": {"inter": ["user_id", "item_id_list", "item_id"]},
                "alias_of_item_id": ["item_id_list"],
                "train_neg_sample_args": None,
                "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "order": "TO", "group_by": "user", "mode": "full"},
                "metrics": ["Recall", "NDCG"],
                "topk": list(KS),
                "valid_metric": "NDCG@10",
                "epochs": args.epochs,
                "seed": args.seed,
                "show_progress": False,
            },
        )
        init_seed(config["seed"], config["reproducibility"])
        dataset = create_dataset(config)
        train_data, valid_data, test_data = data_preparation(config, dataset)
        init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
        model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
        trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
        seconds = []
        for epoch in range(args.epochs):
            start = time.perf_counter()
            loss = trainer._train_epoch(train_data, epoch, show_progress=False)
            seconds.append(time.perf_counter() - start)
            print(f"RecBole SASRec epoch {epoch + 1}/{args.epochs}: loss {float(loss):.4f}, {seconds[-1]:.1f}s", flush=True)
        # What kgrec masks at test: each user's training and validation items (internal ids).
        uid_field, iid_field = dataset.uid_field, dataset.iid_field
        seen: dict[int, set[int]] = {}
        for part in (train_data._dataset, valid_data._dataset):
            inter = part.inter_feat
            for uid, target, hist in zip(inter[uid_field].tolist(), inter[iid_field].tolist(), inter[iid_field + "_list"].tolist()):
                seen.setdefault(uid, set()).update([target, *[h for h in hist if h]])
        ours = masked_metrics(model, test_data, dataset, seen, config["device"])
        own = trainer.evaluate(test_data, load_best_model=False, show_progress=False)
    result = {
        "library": f"RecBole {recbole.__version__}",
        "model": "SASRec (RecBole defaults)",
        "epochs": args.epochs,
        "seed": args.seed,
        "rows": counts,
        "seconds_per_epoch": sum(seconds) / len(seconds),
        "seconds": seconds,
        "test_masked": ours,
        "test_recbole_unmasked": {k: float(v) for k, v in own.items()},
        "hardware": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads",
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
