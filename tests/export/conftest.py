"""A tiny graph (and a run trained on it) for the export tests.

MovieLens-like numeric ids, so user ``1`` and item ``1`` must stay distinct nodes; typed and
untyped entities, an entity-entity edge, a bare (non-IRI) entity key, an IRI with a space, and
labels with quotes, backslashes, line breaks and non-ASCII text, so every writer's escaping
is exercised.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from kgrec.config import ExperimentConfig
from kgrec.graph.build import build_graph
from kgrec.graph.store import load_graph, save_graph
from kgrec.ingest.sources import BuildReport, SourceTables

EX = "http://example.org/"
SCHEMA = "http://schema.org/"
ODD_LABEL = 'Say "hi"\\ to\nthe caf\u00e9'


def export_source_tables() -> SourceTables:
    rows = []
    for u in range(1, 13):
        liked = [i for i in range(1, 11) if i % 3 == u % 3] + [1 + u % 10]
        for j, i in enumerate(liked):
            event = "buy" if j % 3 == 0 else "click"
            rating = float(1 + (u + i) % 5) if event == "buy" else math.nan
            rows.append((str(u), str(i), event, rating, float(1_600_000_000 + 60 * j)))
    rows.append(("1", "2", "click", math.nan, 1_600_000_999.0))  # a repeated interaction
    interactions = pd.DataFrame(rows, columns=["user", "item", "event", "rating", "timestamp"])
    item_nodes = {str(i): f"{EX}item/{i}" for i in range(1, 10)}
    item_nodes["10"] = None
    triples = [(f"{EX}item/{i}", f"{SCHEMA}genre", f"{EX}genre/g{i % 3}") for i in range(1, 10)]
    triples += [
        (f"{EX}item/1", f"{SCHEMA}director", f"{EX}person/bob smith"),
        (f"{EX}item/2", f"{SCHEMA}director", f"{EX}person/ann"),
        (f"{EX}item/3", f"{SCHEMA}director", f"{EX}person/ann"),
        (f"{EX}genre/g1", f"{EX}vocab#broader", f"{EX}genre/g0"),
        (f"{EX}item/4", f"{EX}vocab#tag", "42"),
        (f"{EX}item/4", f"{EX}vocab#sequel", f"{EX}item/5"),
    ]
    texts = [
        (f"{EX}item/1", ODD_LABEL, "First line.\nSecond line."),
        (f"{EX}item/2", "Two", None),
        (f"{EX}genre/g0", "Comedy", "Funny films."),
        (f"{EX}person/ann", "Ann", None),
    ]
    return SourceTables(
        interactions,
        item_nodes,
        pd.DataFrame(triples, columns=["head", "relation", "tail"]),
        pd.DataFrame(texts, columns=["node", "label", "description"]),
        BuildReport(),
        node_types={f"{EX}genre/g{k}": "Genre" for k in range(3)},
    )


@pytest.fixture(scope="session")
def export_graph_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export-graph") / "tiny"
    save_graph(build_graph(export_source_tables(), name="tiny"), folder)
    return folder


@pytest.fixture(scope="session")
def export_kg(export_graph_dir):
    return load_graph(export_graph_dir)


@pytest.fixture(scope="session")
def export_run_dir(export_graph_dir, tmp_path_factory):
    from kgrec.runs import train_run

    cfg = ExperimentConfig()
    cfg.model.use_text = False
    cfg.model.dim = 8
    cfg.model.layers = 1
    cfg.train.epochs = 2
    cfg.train.batch_size = 32
    cfg.train.device = "cpu"
    run_dir = tmp_path_factory.mktemp("export-run") / "tinyrun"
    train_run(export_graph_dir, cfg, run_dir, progress=False, log=lambda *a: None)
    return run_dir


@pytest.fixture(scope="session")
def export_run(export_run_dir):
    from kgrec.runs import load_run

    return load_run(export_run_dir, device="cpu")


@pytest.fixture
def item_iri():
    """The IRI an exported item carries: the RDF resource it matched, else kgrec's namespace."""

    def iri(item_id) -> str:
        return f"{EX}item/{item_id}" if str(item_id) != "10" else "https://kgrec.org/ns/item/10"

    return iri
