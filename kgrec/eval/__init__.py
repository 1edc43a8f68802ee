"""Evaluation: train/valid/test splits and full-ranking metrics."""

from kgrec.eval.metrics import METRIC_NAMES, full_ranking_metrics, topk_items
from kgrec.eval.splits import (
    PROTOCOLS,
    Split,
    make_split,
    read_split,
    recbole_split_counts,
    split_leave_one_out,
    split_random,
    split_temporal,
    write_split,
)

__all__ = [
    "METRIC_NAMES",
    "PROTOCOLS",
    "Split",
    "full_ranking_metrics",
    "make_split",
    "read_split",
    "recbole_split_counts",
    "split_leave_one_out",
    "split_random",
    "split_temporal",
    "topk_items",
    "write_split",
]
