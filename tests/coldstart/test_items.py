"""Cold-start items from a description and RDF triples, embedded without retraining."""

from __future__ import annotations

import pytest
import torch

from kgrec.coldstart.items import cold_items_from_rdf, embed_items, encode_item_texts
from kgrec.errors import KgrecError

NEW_ITEMS = """@prefix ex: <http://example.org/> .
@prefix schema: <http://schema.org/> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
<http://example.org/item/n1> rdfs:label "New one" ; schema:description "A comedy film." ;
    schema:genre <http://example.org/genre/comedy> ; schema:director <http://example.org/person/p0> ; schema:award <http://example.org/award/x> ;
    schema:sequel <http://example.org/item/m0> .
<http://example.org/item/n2> rdfs:label "New two" ; schema:description "A drama film." ; schema:genre <http://example.org/genre/drama> .
<http://example.org/item/n3> rdfs:label "Text only" ; schema:description "A comedy film." .
"""


@pytest.fixture
def new_items_ttl(tmp_path):
    path = tmp_path / "new.ttl"
    path.write_text(NEW_ITEMS)
    return path


def test_new_items_are_found_and_linked_to_known_nodes(tiny_trained, new_items_ttl):
    kg, g = tiny_trained.kg, tiny_trained.graph
    cold = cold_items_from_rdf([new_items_ttl], kg, g)
    assert cold.ids == ["n1", "n2", "n3"]
    assert cold.texts[0] == "New one. A comedy film."
    links = {(cold.ids[r.item], r.relation) for r in cold.links.itertuples()}
    assert links == {("n1", "item:genre:Genre"), ("n1", "item:director:entity"), ("n2", "item:genre:Genre")}
    assert all(r.outgoing for r in cold.links.itertuples())
    assert cold.report["links kept"] == 3
    assert cold.report["triples to nodes the graph does not have"] == 1  # the award
    assert cold.report["triples whose relation the trained graph does not have"] == 1  # the sequel


def test_requested_ids_and_clashes(tiny_trained, new_items_ttl, tmp_path):
    kg, g = tiny_trained.kg, tiny_trained.graph
    cold = cold_items_from_rdf([new_items_ttl], kg, g, item_ids=["n2"], item_iri="http://example.org/item/{id}")
    assert cold.ids == ["n2"]
    with pytest.raises(KgrecError, match="says nothing about item 'n9'"):
        cold_items_from_rdf([new_items_ttl], kg, g, item_ids=["n9"], item_iri="http://example.org/item/{id}")
    with pytest.raises(KgrecError, match="already in the run"):
        cold_items_from_rdf([new_items_ttl], kg, g, item_ids=["n1"], known_ids={"n1"})
    empty = tmp_path / "old.ttl"
    empty.write_text('<http://example.org/item/m3> <http://www.w3.org/2000/01/rdf-schema#label> "Movie 3" .\n')
    with pytest.raises(KgrecError, match="describes no new item"):
        cold_items_from_rdf([empty], kg, g)


def test_cold_items_land_near_their_genre(tiny_trained, new_items_ttl, encoder):
    model, g = tiny_trained.model, tiny_trained.graph
    cold = cold_items_from_rdf([new_items_ttl], tiny_trained.kg, g)
    features, has_text = encode_item_texts(cold.texts, tiny_trained.config.text, encoder)
    out = embed_items(model, g, model.layer0(g), cold, features, has_text)
    assert out.nodes.tolist() == [g.num_nodes, g.num_nodes + 1, g.num_nodes + 2]
    assert out.embeddings.shape == (g.num_nodes + 3, 16) and torch.isfinite(out.embeddings).all()
    users = out.embeddings[: g.num_users]
    scores = users @ out.embeddings[out.nodes].T  # [users, 3]
    comedy_fans, drama_fans = scores[0::2], scores[1::2]  # even users like comedies (tiny_run.py)
    assert comedy_fans[:, 0].mean() > drama_fans[:, 0].mean()  # n1: comedy
    assert drama_fans[:, 1].mean() > comedy_fans[:, 1].mean()  # n2: drama
    assert comedy_fans[:, 2].mean() > drama_fans[:, 2].mean()  # n3: text only, says comedy


def test_id_init_zero_and_mean_differ_by_the_mean_item_id(tiny_trained, new_items_ttl, encoder):
    model, g = tiny_trained.model, tiny_trained.graph
    cold = cold_items_from_rdf([new_items_ttl], tiny_trained.kg, g)
    features, has_text = encode_item_texts(cold.texts, tiny_trained.config.text, encoder)
    x0 = model.layer0(g)
    mean = embed_items(model, g, x0, cold, features, has_text, id_init="mean")
    zero = embed_items(model, g, x0, cold, features, has_text, id_init="zero")
    expected = model.node_input.id_embedding.weight[g.num_users : g.num_users + g.num_items].mean(0)
    assert torch.allclose(mean.layer0[-3:] - zero.layer0[-3:], expected.expand(3, -1), atol=1e-5)
    with pytest.raises(KgrecError, match="unknown id_init"):
        embed_items(model, g, x0, cold, features, has_text, id_init="random")


def test_added_rdf_is_read_with_the_graphs_own_spec(tiny_trained, tmp_path):
    """The graph's [rdf] settings (kept in its manifest) apply to added RDF: its ignore list
    drops edges, its description predicates find the text, its item rule matches the items."""
    import copy

    kg = copy.copy(tiny_trained.kg)
    kg.manifest = dict(kg.manifest, rdf={
        "ignore_predicates": ["http://schema.org/director"],
        "description_predicates": ["http://example.org/blurb"],
        "item_iri": "http://example.org/film/{id}",
    })  # fmt: skip
    path = tmp_path / "new.ttl"
    path.write_text(
        "<http://example.org/film/n7> <http://www.w3.org/2000/01/rdf-schema#label> \"Seven\" ;\n"
        "  <http://example.org/blurb> \"A comedy blurb.\" ;\n"
        "  <http://schema.org/description> \"not the graph's description predicate\" ;\n"
        "  <http://schema.org/genre> <http://example.org/genre/comedy> ;\n"
        "  <http://schema.org/director> <http://example.org/person/p0> .\n"
    )
    cold = cold_items_from_rdf([path], kg, tiny_trained.graph, item_ids=["n7"])
    assert cold.ids == ["n7"]
    assert cold.texts == ["Seven. A comedy blurb."]
    assert {r.relation for r in cold.links.itertuples()} == {"item:genre:Genre"}  # director ignored
