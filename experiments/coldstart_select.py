"""Choose the content model's settings on validation: refit it on a trained run, print the
held-out warm items' pseudo-cold metrics (no test item is looked at).

    python experiments/coldstart_select.py RUN_DIR
"""

import itertools
import sys

import torch

from kgrec.train.content import ContentSettings, fit_content_model, item_positions_with_training
from kgrec.runs import load_run

run = load_run(sys.argv[1], device="cpu", added_items=False)
emb = run.embeddings()
train = run.split.train
items = item_positions_with_training(train["item"].to_numpy(), run.kg.num_items)
pairs = (train["user"].to_numpy(), train["item"].to_numpy())
print(f"{'ranking_weight':>14} {'hidden':>6} {'lr':>7} {'valid loss':>10} {'recall@20':>9} {'ndcg@20':>8} {'epochs':>6}")
for rw, hidden, lr in itertools.product([30.0], [256], [1e-3]):
    torch.manual_seed(0)
    s = ContentSettings(hidden=hidden, ranking_weight=rw, lr=lr, patience=20, seed=run.config.train.seed)
    _, rep = fit_content_model(run.model, run.trained_graph, emb, items, s, pairs, log=lambda *_: None)
    v = rep["valid_hybrid"]
    print(f"{rw:>14} {hidden:>6} {lr:>7} {rep['valid_loss']:>10.4f} {v['recall@20']:>9.4f} {v['ndcg@20']:>8.4f} {rep['best_epoch']:>6}", flush=True)
