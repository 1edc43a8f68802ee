"""Fixtures shared across the test suite: tiny hand-made inputs, nothing downloaded."""

from __future__ import annotations

import importlib.util
import json
import math
import os
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from kgrec.ingest.sources import BuildReport, SourceTables  # noqa: E402

EX = "http://example.org/"


@pytest.fixture
def tiny_tables() -> SourceTables:
    """4 users, 5 items, two behaviours, genres (typed) and a director (untyped)."""
    nan = math.nan
    rows = [
        ("u1", "i1", "click", nan, 1.0),
        ("u1", "i2", "click", nan, 2.0),
        ("u1", "i2", "buy", nan, 3.0),
        ("u2", "i2", "click", nan, 1.0),
        ("u2", "i3", "buy", nan, 2.0),
        ("u3", "i3", "click", nan, 1.0),
        ("u3", "i4", "click", nan, 5.0),
        ("u4", "i5", "buy", nan, 4.0),
        ("u4", "i1", "click", nan, 2.0),
    ]
    interactions = pd.DataFrame(rows, columns=["user", "item", "event", "rating", "timestamp"])
    item_nodes = {f"i{k}": f"{EX}item/i{k}" for k in range(1, 6)}
    item_nodes["i5"] = None  # an item the RDF does not know
    triples = pd.DataFrame(
        [
            (f"{EX}item/i1", "http://schema.org/genre", f"{EX}genre/comedy"),
            (f"{EX}item/i2", "http://schema.org/genre", f"{EX}genre/comedy"),
            (f"{EX}item/i3", "http://schema.org/genre", f"{EX}genre/drama"),
            (f"{EX}item/i3", "http://schema.org/director", f"{EX}person/ann"),
            (f"{EX}item/i4", "http://schema.org/director", f"{EX}person/ann"),
            (f"{EX}genre/drama", "http://example.org/vocab#broader", f"{EX}genre/comedy"),
        ],
        columns=["head", "relation", "tail"],
    )
    texts = pd.DataFrame(
        [
            (f"{EX}item/i1", "One", "A comedy about one thing."),
            (f"{EX}item/i3", "Three", None),
            (f"{EX}genre/comedy", "Comedy", None),
        ],
        columns=["node", "label", "description"],
    )
    node_types = {f"{EX}genre/comedy": "Genre", f"{EX}genre/drama": "Genre"}
    return SourceTables(interactions, item_nodes, triples, texts, BuildReport(), node_types=node_types)


def save_click_graph(folder, clicks, num_items: int, genres: int, relation: str = "http://x/genre"):
    """Build and save the graph of ``clicks`` ``(user, item, timestamp)`` (integers, named
    ``u{n}``/``i{n}``) over items ``i0 .. i{num_items-1}``, item ``i`` in genre ``g{i % genres}``.

    The synthetic graphs of the training, bench and GPU tests differ only in these inputs.
    Repeated (user, item) pairs keep their first click.
    """
    from kgrec.graph.build import build_graph
    from kgrec.graph.store import save_graph

    inter = pd.DataFrame(
        [(f"u{u}", f"i{i}", "click", math.nan, float(t)) for u, i, t in clicks],
        columns=["user", "item", "event", "rating", "timestamp"],
    ).drop_duplicates(["user", "item"])
    triples = pd.DataFrame(
        [(f"iri:i{i}", relation, f"iri:g{i % genres}") for i in range(num_items)], columns=["head", "relation", "tail"]
    )
    tables = SourceTables(inter, {f"i{i}": f"iri:i{i}" for i in range(num_items)}, triples, SourceTables.empty_texts(), BuildReport())
    save_graph(build_graph(tables), folder)
    return folder


@pytest.fixture(scope="session")
def click_graph():
    """:func:`save_click_graph`, for the tests that build a graph of their own."""
    return save_click_graph


def train_on_genre_tastes(folder, config):
    """Train ``config`` where each user likes the items of genre ``u % 3`` (clicked 6 of its 10).

    Asserts what every model must show there: validation recall@10 above 0.5, and the reloaded
    run scoring the test set as training did. Returns ``(results, run, first metrics line)``.
    """
    from kgrec.runs import load_run, train_run

    clicks = [(u, (u % 3) + 3 * j, j) for u in range(60) for j in range((u // 3) % 4, (u // 3) % 4 + 6)]
    save_click_graph(folder / "graph", clicks, num_items=30, genres=3)
    results = train_run(folder / "graph", config, folder / "run", progress=False, log=lambda *_: None)
    assert results["valid"]["recall@10"] > 0.5, results["valid"]
    run = load_run(folder / "run", device="cpu")
    assert run.evaluate("test")["ndcg@20"] == pytest.approx(results["test"]["ndcg@20"], abs=1e-6)
    first = json.loads((folder / "run" / "metrics.jsonl").read_text().splitlines()[0])
    return results, run, first


@pytest.fixture(scope="session")
def genre_tastes():
    """:func:`train_on_genre_tastes`, for the models' "it learns" tests."""
    return train_on_genre_tastes


def _load_tiny_run():
    """tests/tiny_run.py (a tiny trained run with text features, and a fake text encoder).

    Loaded by path: under ``--import-mode=importlib`` the test folders are not packages.
    """
    spec = importlib.util.spec_from_file_location("kgrec_tests_tiny_run", Path(__file__).resolve().parent / "tiny_run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def tiny_helper():
    """The tiny_run module itself: ``tiny_tables()``, ``train_tiny(folder)``, ``HashingEncoder``."""
    return _load_tiny_run()


@pytest.fixture(scope="session")
def stream_helper():
    """tests/stream_world.py: a film world written as files, and a later day of it (issue 17)."""
    spec = importlib.util.spec_from_file_location("kgrec_tests_stream_world", Path(__file__).resolve().parent / "stream_world.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
