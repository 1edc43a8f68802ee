import json

import pytest
import torch

from kgrec.errors import KgrecError
from kgrec.graph.build import build_graph
from kgrec.graph.store import load_graph, save_graph


def test_round_trip_gives_the_same_graph(tiny_tables, tmp_path):
    kg = build_graph(tiny_tables, name="tiny")
    save_graph(kg, tmp_path / "g")
    back = load_graph(tmp_path / "g")
    assert back.node_types == kg.node_types
    assert set(back.data.edge_types) == set(kg.data.edge_types)
    for et in kg.data.edge_types:
        assert torch.equal(back.data[et].edge_index, kg.data[et].edge_index), et
    for t in kg.node_types:
        assert back.nodes[t]["id"].tolist() == kg.nodes[t]["id"].tolist()
        assert back.nodes[t]["text"].tolist() == kg.nodes[t]["text"].tolist()
    assert back.relations == kg.relations
    assert back.interactions.equals(kg.interactions)
    assert not list(tmp_path.glob(".*")), "no temporary folders left behind"
    assert not any(p.suffix == ".pkl" for p in (tmp_path / "g").rglob("*"))


def test_refuses_other_format_versions(tiny_tables, tmp_path):
    save_graph(build_graph(tiny_tables), tmp_path / "g")
    manifest = tmp_path / "g" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["format_version"] = 999
    manifest.write_text(json.dumps(data))
    with pytest.raises(KgrecError, match="format version 999"):
        load_graph(tmp_path / "g")


def test_not_a_graph(tmp_path):
    with pytest.raises(KgrecError, match="not a kgrec graph"):
        load_graph(tmp_path)


def test_failed_save_keeps_the_earlier_graph(tiny_tables, tmp_path, monkeypatch):
    kg = build_graph(tiny_tables, name="first")
    save_graph(kg, tmp_path / "g")

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr("pandas.DataFrame.to_parquet", boom)
    with pytest.raises(RuntimeError):
        save_graph(build_graph(tiny_tables, name="second"), tmp_path / "g", force=True)
    monkeypatch.undo()
    assert load_graph(tmp_path / "g").manifest["name"] == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["g"]


def test_a_graph_is_replaced_only_when_asked_and_its_hash_follows_its_content(tiny_tables, tmp_path):
    save_graph(build_graph(tiny_tables, name="first"), tmp_path / "g")
    first = load_graph(tmp_path / "g").manifest["content_hash"]
    with pytest.raises(KgrecError, match="a graph is already there; add --force"):
        save_graph(build_graph(tiny_tables, name="second"), tmp_path / "g")
    save_graph(build_graph(tiny_tables, name="second"), tmp_path / "g", force=True)
    again = load_graph(tmp_path / "g")
    assert again.manifest["name"] == "second" and again.manifest["content_hash"] == first  # same tables
    smaller = tiny_tables
    smaller.interactions = smaller.interactions.iloc[:-1]
    save_graph(build_graph(smaller), tmp_path / "g", force=True)
    assert load_graph(tmp_path / "g").manifest["content_hash"] != first


def test_matched_iris_are_kept(tiny_tables, tmp_path):
    save_graph(build_graph(tiny_tables), tmp_path / "g")
    items = load_graph(tmp_path / "g").nodes["item"]
    assert items["iri"].tolist()[:4] == [f"http://example.org/item/i{k}" for k in range(1, 5)]
    assert items["iri"].tolist()[4] is None  # i5 matched no RDF resource
