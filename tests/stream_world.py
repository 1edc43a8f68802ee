"""A small world that grows: a film catalogue in Turtle and click logs, written as files.

Used by the tests of ``kgrec build --append``, ``kgrec update`` and the streaming protocol,
which read their inputs from files as a user's would. Users like the films of genre
``u % 3``; every film has a genre, a director and a description. No text model is ever loaded:
the runs train without text (``model.use_text = false``). Loaded by the conftest's
``stream_helper`` fixture (the tests run with ``--import-mode=importlib``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kgrec.config import ColdStartConfig, ExperimentConfig, GraphSpec, InteractionSource, ModelConfig, RdfSource, TrainConfig, UpdateConfig
from kgrec.graph.build import build_graph
from kgrec.graph.store import save_graph
from kgrec.ingest import ingest

EX = "http://example.org/"
GENRES = ["comedy", "drama", "horror"]
PREFIXES = (
    "@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n"
    "@prefix schema: <http://schema.org/> .\n"
    "@prefix vocab: <http://example.org/vocab#> .\n\n"
)


def film_turtle(items) -> str:
    """Turtle about films ``i{n}``: genre (typed), director, label and description."""
    blocks = []
    for n in items:
        genre = GENRES[n % 3]
        blocks.append(
            f"<{EX}item/i{n}> rdfs:label \"Film {n}\" ;\n"
            f"    schema:description \"A {genre} film about number {n}.\" ;\n"
            f"    schema:genre <{EX}genre/{genre}> ;\n"
            f"    schema:director <{EX}person/p{n % 4}> .\n"
        )
    genres = "".join(f"<{EX}genre/{g}> a vocab:Genre ; rdfs:label \"{g.title()}\" .\n" for g in GENRES)
    return PREFIXES + genres + "\n" + "\n".join(blocks)


def write_catalogue(path: Path, items) -> Path:
    Path(path).write_text(film_turtle(items), encoding="utf-8")
    return Path(path)


def clicks(users, items, start: float = 0.0, per_user: int = 6) -> list[tuple[str, str, str, float]]:
    """Each user clicks ``per_user`` films of their genre among ``items`` (in time order)."""
    rows, t = [], start
    items = list(items)
    for u in users:
        liked = [i for i in items if i % 3 == u % 3]
        for j, i in enumerate(liked[(u // 3) % 2 :][:per_user]):
            rows.append((f"u{u}", f"i{i}", "click", t + j))
        t += per_user
    return rows


def write_log(path: Path, rows) -> Path:
    pd.DataFrame(rows, columns=["user", "item", "event", "timestamp"]).to_csv(path, index=False)
    return Path(path)


def build(folder: Path, log: Path, rdf: list[Path], name: str = "world") -> Path:
    """``kgrec build`` of ``log`` and ``rdf`` into ``folder`` (default item matching: IRI tails)."""
    spec = GraphSpec(name=name, interactions=InteractionSource(path=str(log)), rdf=RdfSource(paths=[str(p) for p in rdf]), base_dir=str(Path(log).parent))
    save_graph(build_graph(ingest(spec), name=name), folder)
    return Path(folder)


def config(epochs: int = 3, item_item: str = "none", **update) -> ExperimentConfig:
    """A tiny, quick configuration without text (nothing to load)."""
    return ExperimentConfig(
        model=ModelConfig(dim=8, layers=2, use_text=False, kg_min_degree=1, item_item=item_item),
        train=TrainConfig(epochs=epochs, batch_size=64, lr=0.02, patience=epochs, seed=5, device="cpu"),
        coldstart=ColdStartConfig(content="none"),
        update=UpdateConfig(batch_size=32, **update),
    )


def world(folder: Path, base_users=range(24), base_items=range(18)) -> dict[str, Path]:
    """The base world (log, catalogue, graph) and a later day: 6 new users, 3 new films (with
    their Turtle), more clicks of known users. Returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    base_log = write_log(folder / "base.csv", clicks(base_users, base_items))
    catalogue = write_catalogue(folder / "films.ttl", base_items)
    graph = build(folder / "graph", base_log, [catalogue])
    new_items = range(max(base_items) + 1, max(base_items) + 4)
    later = clicks(range(max(base_users) + 1, max(base_users) + 7), [*base_items, *new_items], start=1000.0)
    later += clicks(range(0, 6), new_items, start=2000.0, per_user=2)
    new_log = write_log(folder / "new.csv", later)
    new_rdf = write_catalogue(folder / "new_films.ttl", new_items)
    return {"base_log": base_log, "catalogue": catalogue, "graph": graph, "new_log": new_log, "new_rdf": new_rdf}


def files_of(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` and its bytes: for "the parent run was not touched"."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}
