"""Neo4j bulk-import CSV: headers in neo4j-admin's format, every relationship end resolvable."""

from __future__ import annotations

import csv
import re

import pytest

from kgrec.export import write_export
from kgrec.export.subgraph import export_tables

ODD_LABEL = 'Say "hi"\\ to\nthe caf\u00e9'
NEO4J_TYPES = "int|long|float|double|boolean|byte|short|char|string|point|date|localtime|time|localdatetime|datetime|duration"
NODE_FIELD = re.compile(rf"^(?:\w*:ID\((\w+)\)|:LABEL|\w+(?::(?:{NEO4J_TYPES})(?:\[\])?)?)$")
REL_FIELD = re.compile(rf"^(?::START_ID\((\w+)\)|:END_ID\((\w+)\)|:TYPE|\w+(?::(?:{NEO4J_TYPES})(?:\[\])?)?)$")


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


@pytest.fixture(scope="module")
def neo4j_folder(export_kg, export_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("neo4j") / "neo4j"
    write_export(export_tables(export_kg, run=export_run, k=3), "neo4j", out)
    return out


def test_headers_follow_the_import_tool_format(neo4j_folder):
    node_files = sorted(neo4j_folder.glob("nodes_*.csv"))
    rel_files = sorted(neo4j_folder.glob("relationships_*.csv"))
    assert {p.name for p in node_files} == {"nodes_user.csv", "nodes_item.csv", "nodes_Genre.csv", "nodes_entity.csv"}
    for path in node_files:
        header, _ = read_csv(path)
        assert all(NODE_FIELD.match(h) for h in header), header
        assert header[0] == f"id:ID({path.stem.removeprefix('nodes_')})" and ":LABEL" in header
    for path in rel_files:
        header, _ = read_csv(path)
        assert all(REL_FIELD.match(h) for h in header), header
        assert header[:3][0].startswith(":START_ID(") and header[1].startswith(":END_ID(") and header[2] == ":TYPE"

    user_header, _ = read_csv(neo4j_folder / "nodes_user.csv")
    assert user_header == ["id:ID(user)", "iri", "label", "description", ":LABEL", "embedding:float[]"]
    buy_header, _ = read_csv(neo4j_folder / "relationships_user__buy__item.csv")
    assert buy_header == [":START_ID(user)", ":END_ID(item)", ":TYPE", "rating:float", "timestamp:long"]
    rec_header, _ = read_csv(neo4j_folder / "relationships_user__recommended__item.csv")
    assert rec_header == [":START_ID(user)", ":END_ID(item)", ":TYPE", "rank:int", "score:float"]


def test_rows_are_complete_and_ends_resolve(neo4j_folder, export_kg):
    ids = {}
    total_nodes = 0
    for path in neo4j_folder.glob("nodes_*.csv"):
        header, rows = read_csv(path)
        space = re.match(r"\w*:ID\((\w+)\)", header[0]).group(1)
        ids[space] = {r[0] for r in rows}
        assert len(ids[space]) == len(rows)  # unique within the id space
        total_nodes += len(rows)
    assert total_nodes == export_kg.num_nodes
    assert ids["user"] & ids["item"]  # "1" is both a user and an item: separate id spaces

    relationships = 0
    for path in neo4j_folder.glob("relationships_*.csv"):
        header, rows = read_csv(path)
        start, end = (re.search(r"\((\w+)\)", h).group(1) for h in header[:2])
        assert all(r[0] in ids[start] and r[1] in ids[end] and r[2] for r in rows)
        relationships += len(rows)
    knowledge = sum(export_kg.data[et].edge_index.size(1) for et in export_kg.knowledge_edge_types())
    assert relationships == len(export_kg.interactions) + knowledge + 3 * export_kg.num_users


def test_values_survive_quoting_and_types(neo4j_folder):
    header, rows = read_csv(neo4j_folder / "nodes_item.csv")
    item1 = next(r for r in rows if r[0] == "1")
    assert item1[header.index("label")] == ODD_LABEL
    assert item1[header.index(":LABEL")] == "Item"
    assert len(item1[header.index("embedding:float[]")].split(";")) == 8
    genre_header, genre_rows = read_csv(neo4j_folder / "nodes_Genre.csv")
    assert {r[genre_header.index(":LABEL")] for r in genre_rows} == {"Genre;Entity"}
    header, rows = read_csv(neo4j_folder / "relationships_user__click__item.csv")
    assert all(r[header.index("rating:float")] == "" for r in rows)  # no rating: no property
    assert all(r[header.index("timestamp:long")].isdigit() for r in rows)
    header, rows = read_csv(neo4j_folder / "relationships_user__recommended__item.csv")
    assert {r[header.index("rank:int")] for r in rows} == {"1", "2", "3"}
    float(rows[0][header.index("score:float")])


def test_import_script_names_every_file(neo4j_folder):
    script = (neo4j_folder / "import.sh").read_text()
    assert "neo4j-admin database import full" in script and "--multiline-fields=true" in script
    for path in neo4j_folder.glob("*.csv"):
        kind = "--nodes=" if path.name.startswith("nodes_") else "--relationships="
        assert f"{kind}{path.name}" in script
