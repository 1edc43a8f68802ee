import pytest

from kgrec.errors import KgrecError
from kgrec.ingest import read_recbole
from kgrec.ingest.sources import INTERACTION_COLUMNS, BuildReport

INTER = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t10\t4\t100\n1\t11\t3\t200\n2\t10\t5\t300\n2\t12\t1\t400\n"
ITEM = "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n10\tToy Story\t1995\tAnimation Comedy\n11\tHeat\t1995\tCrime\n12\tNo Link\t1990\tDrama\n"
KG = "head_id:token\trelation_id:token\ttail_id:token\nm.toy\tfilm.genre\tm.animation\nm.heat\tfilm.director\tm.mann\nm.heat\tfilm.director\tm.mann\n"
LINK = "item_id:token\tentity_id:token\n10\tm.toy\n11\tm.heat\n99\tm.other\n"


@pytest.fixture
def dataset(tmp_path):
    folder = tmp_path / "ml-tiny"
    folder.mkdir()
    for ext, text in {"inter": INTER, "item": ITEM, "kg": KG, "link": LINK}.items():
        (folder / f"ml-tiny.{ext}").write_text(text, encoding="utf-8")
    return folder


def test_reads_interactions_with_typed_headers(dataset):
    tables = read_recbole(dataset)
    assert list(tables.interactions.columns) == INTERACTION_COLUMNS
    assert tables.interactions[["user", "item", "rating", "timestamp"]].values.tolist() == [
        ["1", "10", 4.0, 100.0],
        ["1", "11", 3.0, 200.0],
        ["2", "10", 5.0, 300.0],
        ["2", "12", 1.0, 400.0],
    ]
    assert set(tables.interactions["event"]) == {"interact"}


def test_items_map_to_linked_entities_and_kg_triples_use_the_same_keys(dataset):
    tables = read_recbole(dataset)
    toy, heat = tables.item_nodes["10"], tables.item_nodes["11"]
    assert toy == "urn:recbole:entity:m.toy" and heat == "urn:recbole:entity:m.heat"
    assert "99" not in tables.item_nodes  # linked but never interacted with
    triples = set(map(tuple, tables.triples.values.tolist()))
    assert triples == {
        (toy, "urn:recbole:relation:film.genre", "urn:recbole:entity:m.animation"),
        (heat, "urn:recbole:relation:film.director", "urn:recbole:entity:m.mann"),
    }
    assert tables.report.counts["kg"]["dropped: duplicate"] == 1


def test_item_text_from_title_and_genre_fields(dataset):
    tables = read_recbole(dataset)
    texts = {r["node"]: (r["label"], r["description"]) for r in tables.texts.to_dict("records")}
    assert texts[tables.item_nodes["10"]] == ("Toy Story", "Toy Story. class: Animation Comedy")
    # an item without a link keeps its text under an item key
    assert tables.item_nodes["12"] == "urn:recbole:item:12"
    assert texts["urn:recbole:item:12"][0] == "No Link"


def test_only_inter_file_is_enough(tmp_path):
    folder = tmp_path / "x"
    folder.mkdir()
    (folder / "data.inter").write_text(INTER, encoding="utf-8")
    tables = read_recbole(folder)  # the only .inter file in the folder
    assert len(tables.interactions) == 4 and tables.triples.empty and tables.texts.empty
    assert set(tables.item_nodes.values()) == {None}


def test_name_selects_the_dataset(dataset):
    (dataset / "other.inter").write_text(INTER.replace("\t4\t", "\t2\t"), encoding="utf-8")
    assert read_recbole(dataset, "other").interactions["rating"].iloc[0] == 2.0


def test_bad_rating_names_file_and_line(dataset):
    (dataset / "ml-tiny.inter").write_text(INTER + "3\t10\tgood\t1\n", encoding="utf-8")
    with pytest.raises(KgrecError, match=r"ml-tiny\.inter, line 6: non-numeric rating"):
        read_recbole(dataset)


def test_untyped_header_and_missing_fields_are_errors(dataset):
    (dataset / "ml-tiny.kg").write_text("head\trelation\ttail\na\tb\tc\n", encoding="utf-8")
    with pytest.raises(KgrecError, match=r"ml-tiny\.kg, line 1: header column 'head' has no type"):
        read_recbole(dataset)
    (dataset / "ml-tiny.kg").write_text("head_id:token\ttail_id:token\na\tc\n", encoding="utf-8")
    with pytest.raises(KgrecError, match="relation_id"):
        read_recbole(dataset)


def test_empty_kg_field_names_the_line(dataset):
    (dataset / "ml-tiny.kg").write_text(KG + "m.x\t\tm.y\n", encoding="utf-8")
    with pytest.raises(KgrecError, match=r"ml-tiny\.kg, line 5: empty relation_id"):
        read_recbole(dataset)


def test_no_inter_file(tmp_path):
    with pytest.raises(KgrecError, match="no RecBole .inter file"):
        read_recbole(tmp_path)


def test_report_is_filled(dataset):
    report = BuildReport()
    tables = read_recbole(dataset, report=report)
    assert tables.report is report
    assert report.counts["items"]["items linked to KG entities"] == 2
    assert report.counts["items"]["items without KG link"] == 1
    assert report.counts["interactions"]["kept"] == 4
