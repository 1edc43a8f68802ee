"""MovieLens-100K fetch and conversion, offline: pip is replaced by a fake that writes a tiny wheel."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from rdflib import RDF, RDFS, Graph, Literal, URIRef

import kgrec.datasets.movielens as movielens
from kgrec.datasets import fetch
from kgrec.datasets.movielens import WHEEL_FOLDER, display_title, fetch_ml100k
from kgrec.errors import KgrecError

FB = "http://rdf.freebase.com/ns/"
SCHEMA = "http://schema.org/"

RAW = {
    "inter": "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    "196\t1\t3\t881250949\n186\t2\t5\t891717742\n22\t3\t1\t878887116\n",
    "item": "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
    "1\tToy Story\t1995\tAnimation Children's Comedy\n"
    "2\tUsual Suspects, The\t1995\tCrime Thriller\n"
    "3\tMystery Reel\t\tunknown\n",
    "kg": "head_id:token\trelation_id:token\ttail_id:token\n"
    "m.0dyb1\tfilm.film.directed_by\tm.0jt90f5\n"
    "m.0jt90f5\tfilm.director.film\tm.0dyb1\n"
    "m.02_lmb\tfilm.film.genre\tm.01jfsb\n",
    "link": "item_id:token\tentity_id:token\n1\tm.0dyb1\n2\tm.02_lmb\n",
    "user": "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n196\t49\tM\twriter\t55105\n",
}


def make_wheel(path: Path, raw: dict[str, str] = RAW) -> Path:
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("recbole/__init__.py", "")
        for suffix, text in raw.items():
            wheel.writestr(f"{WHEEL_FOLDER}ml-100k.{suffix}", text)
    return path


class FakePip:
    """Replaces subprocess.run: checks the pip command and drops a wheel into its -d folder."""

    def __init__(self, raw=RAW, returncode=0):
        self.raw, self.returncode, self.calls = raw, returncode, []

    def __call__(self, command, **kwargs):
        self.calls.append(command)
        assert command[:4] == [sys.executable, "-m", "pip", "download"]
        assert "--no-deps" in command and "recbole==1.2.1" in command
        folder = Path(command[command.index("-d") + 1])
        if self.returncode == 0:
            make_wheel(folder / "recbole-1.2.1-py3-none-any.whl", self.raw)
        return subprocess.CompletedProcess(command, self.returncode, "", "ERROR: no matching distribution")


@pytest.fixture
def fake_pip(monkeypatch):
    pip = FakePip()
    monkeypatch.setattr(movielens.subprocess, "run", pip)
    return pip


def test_conversion_outputs(tmp_path, fake_pip):
    folder = fetch_ml100k(tmp_path)
    assert folder == tmp_path / "ml-100k"
    assert sorted(p.name for p in (folder / "raw").iterdir()) == [f"ml-100k.{s}" for s in sorted(RAW)]

    inter = pd.read_csv(folder / "interactions.csv", dtype={"user": str, "item": str})
    assert list(inter.columns) == ["user", "item", "event", "rating", "timestamp"]
    assert inter.values.tolist() == [
        ["196", "1", "rate", 3, 881250949],
        ["186", "2", "rate", 5, 891717742],
        ["22", "3", "rate", 1, 878887116],
    ]

    links = pd.read_csv(folder / "links.csv", dtype=str)
    assert links.values.tolist() == [["1", FB + "m.0dyb1"], ["2", FB + "m.02_lmb"], ["3", "urn:kgrec:ml-100k:item:3"]]

    g = Graph().parse(folder / "knowledge.nt", format="nt")
    toy, suspects, unlinked = URIRef(FB + "m.0dyb1"), URIRef(FB + "m.02_lmb"), URIRef("urn:kgrec:ml-100k:item:3")
    assert (toy, URIRef(FB + "film.film.directed_by"), URIRef(FB + "m.0jt90f5")) in g
    assert (URIRef(FB + "m.0jt90f5"), URIRef(FB + "film.director.film"), toy) in g
    assert g.value(toy, RDFS.label) == Literal("Toy Story")
    assert g.value(toy, URIRef(SCHEMA + "description")) == Literal(
        "Toy Story (1995). Genres: Animation, Children's, Comedy."
    )
    assert g.value(suspects, RDFS.label) == Literal("The Usual Suspects")
    children = URIRef("urn:kgrec:ml-100k:genre:Children's")
    assert (toy, URIRef(SCHEMA + "genre"), children) in g
    assert g.value(children, RDFS.label) == Literal("Children's")
    assert g.value(children, RDF.type) is not None
    # No year and only the "unknown" genre: a bare title, no genre link.
    assert g.value(unlinked, URIRef(SCHEMA + "description")) == Literal("Mystery Reel.")
    assert g.value(unlinked, URIRef(SCHEMA + "genre")) is None
    assert len(g) == 3 + 3 * 2 + 5 + 5 * 2  # kg + labels/descriptions + genre links + genre nodes

    assert not list(tmp_path.glob(".*"))  # no temporary folder left behind


def test_second_call_skips_and_force_refetches(tmp_path, fake_pip):
    folder = fetch_ml100k(tmp_path)
    (folder / "marker").write_text("still here")
    assert fetch_ml100k(tmp_path) == folder
    assert len(fake_pip.calls) == 1 and (folder / "marker").exists()
    fetch_ml100k(tmp_path, force=True)
    assert len(fake_pip.calls) == 2 and not (folder / "marker").exists()


def test_registry_dispatches_and_rejects_unknown_names(tmp_path, fake_pip):
    assert fetch("ml-100k", tmp_path) == tmp_path / "ml-100k"
    with pytest.raises(KgrecError, match="ml-100k"):
        fetch("ml-1b", tmp_path)


def test_pip_failure_is_a_kgrec_error_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(movielens.subprocess, "run", FakePip(returncode=1))
    with pytest.raises(KgrecError, match="no matching distribution"):
        fetch_ml100k(tmp_path)
    assert not (tmp_path / "ml-100k").exists() and not list(tmp_path.iterdir())


def test_wheel_without_the_dataset_is_a_kgrec_error(tmp_path, monkeypatch):
    monkeypatch.setattr(movielens.subprocess, "run", FakePip(raw={k: v for k, v in RAW.items() if k != "kg"}))
    with pytest.raises(KgrecError, match="ml-100k.kg"):
        fetch_ml100k(tmp_path)
    assert not (tmp_path / "ml-100k").exists()


def test_missing_column_names_the_file(tmp_path, monkeypatch):
    broken = dict(RAW, link="item_id:token\tfreebase:token\n1\tm.0dyb1\n")
    monkeypatch.setattr(movielens.subprocess, "run", FakePip(raw=broken))
    with pytest.raises(KgrecError, match=r"ml-100k\.link, line 1: missing column\(s\) entity_id"):
        fetch_ml100k(tmp_path)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("Toy Story", "Toy Story"),
        ("Usual Suspects, The", "The Usual Suspects"),
        ("Horseman on the Roof, The (Hussard sur le toit, Le)", "The Horseman on the Roof (Hussard sur le toit, Le)"),
        ("Appartement, L'", "L'Appartement"),
        ("Postino, Il", "Il Postino"),
        ("Stealing Beauty, Texas", "Stealing Beauty, Texas"),
    ],
)
def test_display_title(raw, shown):
    assert display_title(raw) == shown


def test_genre_scenes_follow_the_documented_rule(tmp_path):
    from kgrec.datasets.movielens import genre_scene, write_scene_log

    assert genre_scene("Animation Children's Comedy") == "family"
    assert genre_scene("Action Comedy") == "thrill"  # a tie: the earlier group
    assert genre_scene("Comedy Drama") == "comedy"
    assert genre_scene("Drama Romance War") == "drama"
    assert genre_scene("unknown") == "drama"
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "ml-100k.item").write_text("item_id:token\tclass:token_seq\n1\tAnimation Comedy\n2\tDrama\n", encoding="utf-8")
    (tmp_path / "interactions.csv").write_text("user,item,event,rating,timestamp\n7,1,rate,4,10\n7,2,rate,3,11\n", encoding="utf-8")
    write_scene_log(tmp_path)
    assert (tmp_path / "interactions-scenes.csv").read_text().splitlines()[1:] == ["7,1,rate,4,10,family", "7,2,rate,3,11,drama"]
