import pytest

from kgrec.errors import KgrecError
from kgrec.ingest import read_kgat
from kgrec.ingest.sources import INTERACTION_COLUMNS


@pytest.fixture
def dataset(tmp_path):
    (tmp_path / "train.txt").write_text("0 0 1 2\n1 2 3\n2\n", encoding="utf-8")
    (tmp_path / "test.txt").write_text("0 3\n1 0\n", encoding="utf-8")
    # items are entities 0..3; 4 and 5 are other entities
    (tmp_path / "kg_final.txt").write_text("0 0 4\n1 0 4\n3 1 5\n3 1 5\n\n", encoding="utf-8")
    return tmp_path


def test_interactions_hold_train_and_test_pairs(dataset):
    tables, test = read_kgat(dataset)
    assert list(tables.interactions.columns) == INTERACTION_COLUMNS
    pairs = tables.interactions[["user", "item"]].values.tolist()
    assert pairs == [["0", "0"], ["0", "1"], ["0", "2"], ["1", "2"], ["1", "3"], ["0", "3"], ["1", "0"]]
    assert test.values.tolist() == [["0", "3"], ["1", "0"]] and list(test.columns) == ["user", "item"]


def test_items_are_the_low_entities(dataset):
    tables, _ = read_kgat(dataset)
    assert tables.item_nodes == {str(i): f"urn:kgat:entity:{i}" for i in range(4)}
    triples = set(map(tuple, tables.triples.values.tolist()))
    assert triples == {
        ("urn:kgat:entity:0", "urn:kgat:relation:0", "urn:kgat:entity:4"),
        ("urn:kgat:entity:1", "urn:kgat:relation:0", "urn:kgat:entity:4"),
        ("urn:kgat:entity:3", "urn:kgat:relation:1", "urn:kgat:entity:5"),
    }
    counts = tables.report.counts
    assert counts["kg"]["dropped: duplicate"] == 1
    assert counts["items"]["items in the knowledge graph"] == 3
    assert counts["items"]["items without knowledge"] == 1


def test_bad_interaction_line_names_file_and_line(dataset):
    (dataset / "train.txt").write_text("0 1\n1 x 2\n", encoding="utf-8")
    with pytest.raises(KgrecError, match=r"train\.txt, line 2: 'x' is not an integer id"):
        read_kgat(dataset)


def test_bad_kg_line_names_file_and_line(dataset):
    (dataset / "kg_final.txt").write_text("0 0 4\n\n1 zero 4\n", encoding="utf-8")
    with pytest.raises(KgrecError, match=r"kg_final\.txt, line 3: expected three non-negative integer ids"):
        read_kgat(dataset)
    (dataset / "kg_final.txt").write_text("0 0 4\n1 0\n", encoding="utf-8")
    with pytest.raises(KgrecError, match=r"kg_final\.txt, line 2"):
        read_kgat(dataset)
    (dataset / "kg_final.txt").write_text("0 0 4\n1 0 4 4\n", encoding="utf-8")
    with pytest.raises(KgrecError, match=r"kg_final\.txt, line 2: expected three ids"):
        read_kgat(dataset)


def test_missing_file(dataset):
    (dataset / "kg_final.txt").unlink()
    with pytest.raises(KgrecError, match="kg_final.txt"):
        read_kgat(dataset)
