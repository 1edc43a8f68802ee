"""Which RDF resource is which item (or user) of the logs.

Three ways, tried in this order of precedence:

1. an IRI template (``rdf.item_iri = "http://example.org/film/{id}"``);
2. a link file: two columns, item id and IRI, with or without a header line;
3. by default, the one resource whose IRI ends with ``/<id>`` or ``#<id>``.

An IRI only counts as a match when it occurs in the RDF (as a subject or an object): an item
whose resource is not there has no knowledge to bring, and says so in the report instead of
becoming a lonely entity. Ids are tried as written and, failing that, percent-encoded, since an
IRI cannot hold, say, a space.

Default matching builds an index from IRI tail (after the last ``/`` or ``#``) to IRIs once,
so matching is a dictionary look-up per id, however many resources the RDF holds.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import quote, unquote

from rdflib import Graph, URIRef

from kgrec.config import RdfSource
from kgrec.errors import KgrecError
from kgrec.ingest.iris import iri_problem, shown

_SHOWN_CANDIDATES = 5


def resource_iris(graph: Graph) -> set[str]:
    """Every IRI that occurs as a subject or an object of ``graph``."""
    iris = {str(s) for s in graph.subjects(unique=True) if isinstance(s, URIRef)}
    iris.update(str(o) for o in graph.objects(unique=True) if isinstance(o, URIRef))
    return iris


def match_items(
    item_ids: Iterable[str],
    graph_or_subject_iris: Graph | Iterable[str],
    rdf: RdfSource,
    base_dir: str | Path | None = None,
    *,
    kind: str = "item",
) -> dict[str, str | None]:
    """Map each id to the IRI of its RDF resource, or None when it has none.

    Args:
        item_ids: the ids from the logs.
        graph_or_subject_iris: the parsed RDF, or the set of IRIs it mentions
            (:func:`resource_iris`; pass it when matching several times).
        rdf: ``item_iri`` (template) and ``link`` (file) say how to match.
        base_dir: folder a relative link file is resolved against.
        kind: ``"item"``, or ``"user"`` to match users through ``rdf.user_iri`` (users are
            matched by template only: guessing from IRI tails would mistake item 7 for user 7).

    Raises:
        KgrecError: a malformed link file, or (default matching) an id that ends two or more
            resource IRIs.
    """
    if isinstance(graph_or_subject_iris, Graph):
        resources = resource_iris(graph_or_subject_iris)
    elif isinstance(graph_or_subject_iris, (set, frozenset)):
        resources = graph_or_subject_iris
    else:
        resources = set(map(str, graph_or_subject_iris))
    ids = list(dict.fromkeys(str(i) for i in item_ids))

    if kind == "user":
        if rdf.user_iri is None:
            return {}
        return _match_template(ids, rdf.user_iri, resources)
    if kind != "item":
        raise ValueError(f"kind must be 'item' or 'user', not {kind!r}")
    if rdf.item_iri is not None:
        return _match_template(ids, rdf.item_iri, resources)
    if rdf.link is not None:
        link = Path(rdf.link)
        if base_dir is not None and not link.is_absolute():
            link = Path(base_dir) / link
        links = read_link_file(link)
        return {i: links[i] if links.get(i) in resources else None for i in ids}
    return _match_by_suffix(ids, resources)


def item_id_namer(rdf: RdfSource, base_dir: str | Path | None = None) -> Callable[[str], str | None]:
    """The inverse of :func:`match_items`: which item id a resource's IRI stands for.

    For resources that are not yet items of a graph (cold-start items described only by RDF),
    by the rule the graph's items were matched with: the ``{id}`` part of ``rdf.item_iri``
    (None for an IRI the template does not fit); the id a link file gives the IRI; otherwise,
    and for IRIs the link file does not list, the IRI's last segment after ``/`` or ``#``,
    percent-decoded (the spelling :func:`match_items` tries second).
    """
    if rdf.item_iri is not None:
        if "{id}" not in rdf.item_iri:
            raise KgrecError(f"IRI template {rdf.item_iri!r} has no {{id}} placeholder")
        prefix, _, suffix = rdf.item_iri.partition("{id}")

        def from_template(iri: str) -> str | None:
            if len(iri) > len(prefix) + len(suffix) and iri.startswith(prefix) and iri.endswith(suffix):
                return unquote(iri[len(prefix) : len(iri) - len(suffix)])
            return None

        return from_template
    linked: dict[str, str] = {}
    if rdf.link is not None:
        link = Path(rdf.link)
        if base_dir is not None and not link.is_absolute():
            link = Path(base_dir) / link
        linked = {iri: item for item, iri in read_link_file(link).items()}

    def from_tail(iri: str) -> str | None:
        if iri in linked:
            return linked[iri]
        cut = max(iri.rfind("/"), iri.rfind("#"))
        return unquote(iri[cut + 1 :]) if 0 <= cut < len(iri) - 1 else None

    return from_tail


def _spellings(item_id: str) -> list[str]:
    encoded = quote(item_id, safe="")
    return [item_id] if encoded == item_id else [item_id, encoded]


def _match_template(ids: list[str], template: str, resources: set[str]) -> dict[str, str | None]:
    if "{id}" not in template:
        raise KgrecError(f"IRI template {template!r} has no {{id}} placeholder")
    problem = iri_problem(template.replace("{id}", "1"))
    if problem:
        raise KgrecError(f"IRI template {template!r} does not make IRIs: the IRI it makes {problem}")
    matches: dict[str, str | None] = {}
    for item_id in ids:
        matches[item_id] = None
        for spelling in _spellings(item_id):
            iri = template.replace("{id}", spelling)
            if iri in resources:
                matches[item_id] = iri
                break
    return matches


def _match_by_suffix(ids: list[str], resources: set[str]) -> dict[str, str | None]:
    # tail -> the first IRI with that tail; tails shared by several IRIs also go to `shared`
    # (one small dict of sets instead of a set per tail keeps indexing a million IRIs quick)
    by_tail: dict[str, str] = {}
    shared: dict[str, set[str]] = {}
    for iri in resources:
        for separator in "/#":
            cut = iri.rfind(separator)
            if 0 <= cut < len(iri) - 1:
                tail = iri[cut + 1 :]
                first = by_tail.setdefault(tail, iri)
                if first != iri:
                    shared.setdefault(tail, {first}).add(iri)

    matches: dict[str, str | None] = {}
    for item_id in ids:
        matches[item_id] = None
        for spelling in _spellings(item_id):
            if "/" in spelling or "#" in spelling:  # not a single IRI segment: scan (rare)
                candidates = {
                    r for r in resources if r.endswith("/" + spelling) or r.endswith("#" + spelling)
                }
            else:
                candidates = shared.get(spelling) or ({by_tail[spelling]} if spelling in by_tail else set())
            if len(candidates) > 1:
                shown = sorted(candidates)
                more = f" and {len(shown) - _SHOWN_CANDIDATES} more" if len(shown) > _SHOWN_CANDIDATES else ""
                raise KgrecError(
                    f"item {item_id!r} matches several RDF resources: "
                    f"{', '.join(shown[:_SHOWN_CANDIDATES])}{more}. Say which IRIs are items with "
                    "--item-iri (a template such as 'http://example.org/item/{id}', rdf.item_iri "
                    "in the graph spec) or --link (a file of item id, IRI pairs, rdf.link)"
                )
            if candidates:
                matches[item_id] = next(iter(candidates))
                break
    return matches


def read_link_file(path: Path) -> dict[str, str]:
    """Read a two-column (item id, IRI) CSV or TSV file, with or without a header line.

    The delimiter is a tab for ``.tsv``/``.tab`` files or when the first line holds one, else a
    comma. A first line whose second field is not an IRI (no ``scheme:``) is a header.
    """
    path = Path(path)
    if not path.is_file():
        raise KgrecError("link file not found", path=path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise KgrecError(f"not UTF-8 text ({e.reason} at byte {e.start})", path=path) from None
    first_line = text.split("\n", 1)[0]
    tab = path.suffix.lower() in (".tsv", ".tab") or "\t" in first_line
    links: dict[str, str] = {}
    first_row = True
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if tab else ",")
    rows = iter(reader)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as e:
            raise KgrecError(f"cannot read as CSV: {e}", path=path, line=reader.line_num) from None
        number = reader.line_num
        if not row or all(not field.strip() for field in row):
            continue
        if len(row) != 2:
            raise KgrecError(f"expected 2 fields (item id, IRI), found {len(row)}", path=path, line=number)
        item_id, iri = row[0].strip(), row[1].strip()
        if first_row and ":" not in iri:
            first_row = False
            continue  # a header line
        first_row = False
        if not item_id:
            raise KgrecError("empty item id", path=path, line=number)
        problem = iri_problem(iri)
        if problem:
            raise KgrecError(f"invalid IRI: {shown(iri)} {problem}", path=path, line=number)
        if links.get(item_id, iri) != iri:
            raise KgrecError(
                f"item {item_id!r} is linked to two IRIs: {links[item_id]} and {iri}", path=path, line=number
            )
        links[item_id] = iri
    if not links:
        raise KgrecError("the link file holds no (item id, IRI) pairs", path=path)
    return links
