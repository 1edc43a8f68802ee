"""Node features: text policy, homogeneous order, zero rows for nodes without text."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch_geometric.data import HeteroData

import kgrec.text.features as features
from kgrec.config import TextConfig
from kgrec.graph.container import KnowledgeGraph
from kgrec.text.features import build_node_features, node_text


@pytest.mark.parametrize(
    ("label", "description", "expected"),
    [
        ("Toy Story", "A film about toys.", "Toy Story. A film about toys."),
        ("Who?", "A riddle.", "Who? A riddle."),
        ("Toy Story", "Toy Story (1995). Genres: Animation.", "Toy Story (1995). Genres: Animation."),
        ("Comedy", None, "Comedy"),
        (None, "  only a\n description ", "only a description"),
        ("", "   ", None),
        (None, float("nan"), None),
    ],
)
def test_node_text_policy(label, description, expected):
    assert node_text(label, description) == expected


class FakeEncoder:
    """Stands in for the BERT encoder: a text's vector is its length in every dimension."""

    encoded: list[list[str]] = []

    def __init__(self, model, device="cpu", batch_size=64, max_length=128, cache_dir=None):
        self.dim = 4

    def encode(self, texts, progress=True):
        FakeEncoder.encoded.append(list(texts))
        return np.array([[len(t)] * self.dim for t in texts], dtype=np.float32)


def tiny_graph() -> KnowledgeGraph:
    def nodes(ids, labels, texts):
        return pd.DataFrame({"id": pd.Series(ids, dtype="string"), "label": labels, "text": texts})

    table = {
        # Entity types deliberately inserted before user/item: order must come from node_types.
        "genre": nodes(["g:drama", "g:noir"], ["Drama", None], [None, None]),
        "Person": nodes(["p:1"], ["Ada"], ["A director."]),
        "user": nodes(["u1", "u2"], [None, None], [None, None]),
        "item": nodes(["i1", "i2", "i3"], ["Alpha", None, "Drama"], ["An alpha film.", "Plot only.", None]),
    }
    data = HeteroData()
    for t, df in table.items():
        data[t].num_nodes = len(df)
    interactions = pd.DataFrame(
        {"user": [0], "item": [0], "event": ["view"], "rating": [np.nan], "timestamp": [np.nan]}
    )
    return KnowledgeGraph(data=data, nodes=table, interactions=interactions, behaviours=["view"])


def test_features_follow_homogeneous_order_with_zero_rows(monkeypatch):
    monkeypatch.setattr(features, "TextEncoder", FakeEncoder)
    FakeEncoder.encoded = []
    kg = tiny_graph()
    x, has_text = build_node_features(kg, TextConfig(cache_dir="unused"))

    # Order: user u1 u2 | item i1 i2 i3 | Person p:1 | genre drama noir ("Person" < "genre").
    assert kg.node_types == ["user", "item", "Person", "genre"]
    expected_texts = [None, None, "Alpha. An alpha film.", "Plot only.", "Drama", "Ada. A director.", "Drama", None]
    assert has_text.dtype == torch.bool and x.dtype == torch.float32
    assert has_text.tolist() == [t is not None for t in expected_texts]
    assert x.shape == (kg.num_nodes, 4)
    for row, text in zip(x, expected_texts):
        expected_row = [float(len(text))] * 4 if text else [0.0] * 4
        assert row.tolist() == expected_row

    # "Drama" (an item label and a genre label) is encoded once.
    (encoded,) = FakeEncoder.encoded
    assert sorted(encoded) == sorted({t for t in expected_texts if t})


def test_graph_without_any_text(monkeypatch):
    monkeypatch.setattr(features, "TextEncoder", FakeEncoder)
    FakeEncoder.encoded = []
    kg = tiny_graph()
    for df in kg.nodes.values():
        df["label"], df["text"] = None, None
    x, has_text = build_node_features(kg, TextConfig())
    assert not has_text.any() and x.abs().sum() == 0 and FakeEncoder.encoded == []
