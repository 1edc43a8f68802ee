"""The content model that stands in for a cold item's missing embedding (ALDI-style distillation)."""

from __future__ import annotations

import json

import pytest
import torch

from kgrec.models.content import (
    ContentInputs,
    ContentModel,
    load_content_model,
    neighbour_means,
    warm_item_inputs,
)
from kgrec.coldstart.items import ColdItems, cold_items_from_rdf, embed_items, encode_item_texts
from kgrec.config import ExperimentConfig
from kgrec.errors import KgrecError
from kgrec.experiment import check_experiment
from kgrec.models.graph_tensors import GraphTensors
from kgrec.runs import load_run

from tests.coldstart.test_items import NEW_ITEMS  # noqa: F401  (the same new films)


def test_neighbour_means_by_hand():
    z = torch.tensor([[1.0, 0.0], [0.0, 2.0], [4.0, 4.0]])
    means, count = neighbour_means(z, torch.tensor([0, 0, 2]), torch.tensor([0, 1, 2]), 3)
    assert torch.allclose(means, torch.tensor([[0.5, 1.0], [0.0, 0.0], [4.0, 4.0]]))
    assert count.tolist() == [2, 0, 1]


def test_warm_inputs_take_knowledge_neighbours_never_users():
    # 1 user (0), 2 items (1, 2), 1 entity (3): user-item edges both ways, item 1 <-> entity
    edges = torch.tensor([[0, 1, 0, 2, 1, 3], [1, 0, 2, 0, 3, 1]])
    g = GraphTensors(1, 2, 4, edges, torch.zeros(6, dtype=torch.long), ["r"], torch.tensor([0, 1, 1, 2]))
    z = torch.tensor([[9.0, 9.0], [1.0, 1.0], [2.0, 2.0], [3.0, -3.0]])
    inputs = warm_item_inputs(g, z)
    assert inputs.degree.tolist() == [1, 0]  # item 1 has the entity; item 2 only a user
    assert torch.allclose(inputs.neighbours, torch.tensor([[3.0, -3.0], [0.0, 0.0]]))
    assert inputs.text is None and not inputs.has_text.any()
    assert inputs.empty_rows().tolist() == [False, True]


def test_model_shapes_and_text_width_check():
    model = ContentModel(feature_dim=8, dim=4, hidden=16)
    inputs = ContentInputs(torch.randn(3, 8), torch.ones(3, dtype=torch.bool), torch.randn(3, 4), torch.tensor([1, 0, 2]), torch.randn(3, 4))
    assert model(inputs).shape == (3, 4)
    with pytest.raises(KgrecError, match="expects 8-dimensional"):
        model(ContentInputs(torch.randn(3, 5), inputs.has_text, inputs.neighbours, inputs.degree, inputs.propagated))
    with pytest.raises(KgrecError, match="needs the new items' propagated vectors"):
        model(ContentInputs(inputs.text, inputs.has_text, inputs.neighbours, inputs.degree))
    assert ContentModel(feature_dim=8, dim=4, hidden=16, propagated=False)(inputs.rows(torch.tensor([0, 2]))).shape == (2, 4)


def test_cold_views_propagated_vectors_are_what_a_new_item_gets(tiny_trained):
    """An item made cold by its group equals the same item added as new by propagation."""
    from kgrec.train.content import cold_views

    run = tiny_trained
    model, g = run.model, run.trained_graph
    vectors, _ = cold_views(model, g, seed=0, groups=g.num_items)  # one item at a time: exact
    item = 3
    u = g.num_users
    keep = ~(((g.edge_index[0] == u + item) & (g.edge_index[1] < u)) | ((g.edge_index[1] == u + item) & (g.edge_index[0] < u)))
    import dataclasses

    g_cold = dataclasses.replace(g, edge_index=g.edge_index[:, keep], edge_type=g.edge_type[keep])
    x0 = model.layer0(g).clone()
    x0[u + item] = model.mean_id(u, u + g.num_items) + model.text_input(g.features[u + item : u + item + 1])[0] * g.has_text[u + item]
    assert torch.allclose(vectors[item], model.propagate(g_cold, x0)[u + item], atol=1e-5)
    assert not torch.allclose(vectors[item], run.z[u + item], atol=1e-3)  # unlike its trained embedding


def test_cold_views_neighbours_are_the_entities_as_a_new_item_sees_them(tiny_trained):
    """The KG-neighbour input of a warm item is the mean of its entities in the propagation with
    the item made new, not their trained embeddings (which carry the item's own users)."""
    import dataclasses

    from kgrec.train.content import cold_views

    run = tiny_trained
    model, g = run.model, run.trained_graph
    u, n = g.num_users, g.num_items
    _, neighbours = cold_views(model, g, seed=0, groups=n)  # one item at a time: exact
    src, dst = g.edge_index
    into = (dst >= u) & (dst < u + n) & (src >= u)
    item = next(i for i in range(n) if bool((into & (dst == u + i)).any()))
    keep = ~(((src == u + item) & (dst < u)) | ((dst == u + item) & (src < u)))
    g_cold = dataclasses.replace(g, edge_index=g.edge_index[:, keep], edge_type=g.edge_type[keep])
    x0 = model.layer0(g).clone()
    x0[u + item] = model.mean_id(u, u + n) + model.text_input(g.features[u + item : u + item + 1])[0] * g.has_text[u + item]
    out = model.propagate(g_cold, x0)
    entities = src[into & (dst == u + item)]
    assert torch.allclose(neighbours[item], out[entities].mean(0), atol=1e-5)
    trained = warm_item_inputs(g, run.z).neighbours[item]
    assert not torch.allclose(neighbours[item], trained, atol=1e-4), "the trained entities know the item's users"


def test_training_writes_a_content_model_that_reloads(tiny_trained):
    run_dir = tiny_trained.run_dir
    report = json.loads((run_dir / "results.json").read_text())["content_model"]
    assert report["fit_items"] + report["valid_items"] <= tiny_trained.kg.num_items
    assert 0.0 <= report["valid_hybrid"]["recall@20"] <= 1.0
    assert tiny_trained.content is not None
    again = load_content_model(run_dir, torch.device("cpu"))
    for a, b in zip(tiny_trained.content.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)


def test_content_vectors_follow_the_genre(tiny_trained, encoder, tmp_path):
    """A new comedy scores higher for the comedy fans than for the drama fans (and vice versa)."""
    ttl = tmp_path / "new.ttl"
    ttl.write_text(NEW_ITEMS)
    run = tiny_trained.without_added_items()
    cold = cold_items_from_rdf([ttl], run.kg, run.trained_graph, item_ids=["n1", "n2"], item_iri="http://example.org/item/{id}")
    features, has_text = encode_item_texts(cold.texts, run.config.text, encoder)
    before = run.z.clone()
    run.add_cold_items(cold, features, has_text)
    z = run.item_embeddings()[-2:]
    users = run.user_embeddings()
    comedy_fans = [run.kg.user_index[f"u{u}"] for u in range(24) if u % 2 == 0]  # even items are comedies
    drama_fans = [run.kg.user_index[f"u{u}"] for u in range(24) if u % 2 == 1]
    scores = users @ z.t()
    assert scores[comedy_fans, 0].mean() > scores[drama_fans, 0].mean()
    assert scores[drama_fans, 1].mean() > scores[comedy_fans, 1].mean()
    # the trained nodes keep their embeddings: warm rankings do not move when items are added
    assert torch.equal(run.z[: before.size(0)], before)


def test_an_item_with_nothing_to_embed_it_from_is_refused(tiny_trained):
    run = tiny_trained
    import pandas as pd

    empty = ColdItems(["ghost"], [None], [None], pd.DataFrame(columns=["item", "relation", "node", "outgoing"]))
    features = torch.zeros(1, run.trained_graph.feature_dim)
    with pytest.raises(KgrecError, match="item 'ghost' has neither a description nor a link"):
        embed_items(run.model, run.trained_graph, run.x0, empty, features, torch.zeros(1, dtype=torch.bool), content=run.content, z=run.z)


def test_damaged_content_model_is_a_clear_error(tiny_trained, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(tiny_trained.run_dir, copy)
    (copy / "content_model.json").write_text("{not json")
    with pytest.raises(KgrecError, match="damaged content model"):
        load_content_model(copy, torch.device("cpu"))


def test_config_choices_are_checked():
    config = ExperimentConfig()
    config.coldstart.content = "magic"
    with pytest.raises(KgrecError, match="coldstart.content = 'magic' is not one of: distill, none"):
        check_experiment(config)
    config = ExperimentConfig()
    config.coldstart.ranking_weight = -1.0
    with pytest.raises(KgrecError, match="ranking_weight must be >= 0"):
        check_experiment(config)
    config = ExperimentConfig()
    config.coldstart.neighbours = "warm"
    with pytest.raises(KgrecError, match="coldstart.neighbours = 'warm' is not one of: cold, trained"):
        check_experiment(config)
    config = ExperimentConfig()
    config.coldstart.inputs = "kg"
    with pytest.raises(KgrecError, match=r"coldstart.inputs = 'kg' is not one of: text\+kg, text"):
        check_experiment(config)


def test_none_trains_no_content_model(tiny_helper, tmp_path):
    import dataclasses

    from kgrec.runs.training import train_run
    from kgrec.graph.store import save_graph
    from kgrec.graph.build import build_graph

    save_graph(build_graph(tiny_helper.tiny_tables(), name="tiny"), tmp_path / "graph")
    config = ExperimentConfig()
    config = dataclasses.replace(
        config,
        model=dataclasses.replace(config.model, dim=8, layers=1, use_text=False),
        train=dataclasses.replace(config.train, epochs=2, batch_size=64, device="cpu"),
        coldstart=dataclasses.replace(config.coldstart, content="none"),
    )
    train_run(tmp_path / "graph", config, tmp_path / "run", progress=False, log=lambda *_: None)
    assert not (tmp_path / "run" / "content_model.safetensors").exists()
    assert load_run(tmp_path / "run", device="cpu").content is None


@pytest.fixture(scope="module")
def tiny_text_only(tmp_path_factory, tiny_helper):
    """The tiny run with a content model that reads the description alone (``inputs = "text"``)."""
    return tiny_helper.train_tiny(tmp_path_factory.mktemp("tiny-text-only"), content_inputs="text")


def test_a_text_only_content_model_ignores_the_knowledge_graph():
    model = ContentModel(feature_dim=8, dim=4, hidden=16, kg=False).eval()
    text = torch.randn(3, 8)
    a = model(ContentInputs(text, torch.ones(3, dtype=torch.bool), torch.randn(3, 4), torch.tensor([1, 0, 2]), torch.randn(3, 4)))
    b = model(ContentInputs(text, torch.ones(3, dtype=torch.bool), torch.zeros(3, 4), torch.tensor([0, 0, 0]), None))
    assert torch.equal(a, b)


def test_text_only_content_model_reloads_serves_by_genre_and_propagates_an_item_without_text(tiny_text_only, encoder, tmp_path):
    run = tiny_text_only
    assert run.content is not None and not run.content.uses_kg
    again = load_content_model(run.run_dir, torch.device("cpu"))
    assert not again.uses_kg
    ttl = tmp_path / "new.ttl"
    ttl.write_text(NEW_ITEMS)
    cold = cold_items_from_rdf([ttl], run.kg, run.trained_graph, item_ids=["n1", "n2"], item_iri="http://example.org/item/{id}")
    features, has_text = encode_item_texts(cold.texts, run.config.text, encoder)
    fresh = run.without_added_items()
    fresh.add_cold_items(cold, features, has_text)
    scores = fresh.user_embeddings() @ fresh.item_embeddings()[-2:].t()
    comedy_fans = [run.kg.user_index[f"u{u}"] for u in range(24) if u % 2 == 0]
    drama_fans = [run.kg.user_index[f"u{u}"] for u in range(24) if u % 2 == 1]
    assert scores[comedy_fans, 0].mean() > scores[drama_fans, 0].mean()
    assert scores[drama_fans, 1].mean() > scores[comedy_fans, 1].mean()
    import pandas as pd

    # an item with RDF links but no description keeps the vector the encoder propagates for it
    links_only = ColdItems(["linked"], [None], [None], pd.DataFrame({"item": [0], "relation": [cold.links["relation"].iloc[0]], "node": [cold.links["node"].iloc[0]], "outgoing": [True]}))
    no_text = torch.zeros(1, run.trained_graph.feature_dim), torch.zeros(1, dtype=torch.bool)
    served = embed_items(run.model, run.trained_graph, run.x0, links_only, *no_text, content=run.content, z=run.z)
    propagated = embed_items(run.model, run.trained_graph, run.x0, links_only, *no_text)
    assert torch.allclose(served.embeddings[-1], propagated.embeddings[-1])
    assert torch.count_nonzero(served.embeddings[-1]) > 0


def test_a_refit_content_model_is_trained_again_on_every_warm_item_after_the_same_selection(tiny_helper, tmp_path_factory, tiny_text_only):
    """``[coldstart] refit``: the held-out items choose the epochs, then every warm item trains the model served."""
    run = tiny_helper.train_tiny(tmp_path_factory.mktemp("tiny-refit"), content_inputs="text", refit=True)
    report = json.loads((run.run_dir / "content_model.json").read_text())["report"]
    assert report["refit_items"] == report["fit_items"] + report["valid_items"] > 0
    plain = json.loads((tiny_text_only.run_dir / "content_model.json").read_text())["report"]
    assert plain["refit_items"] == 0
    assert plain["best_epoch"] == report["best_epoch"] and plain["valid_hybrid"] == report["valid_hybrid"], "the same selection"
    served, selected = run.content.state_dict(), tiny_text_only.content.state_dict()
    assert any(not torch.equal(served[k], selected[k]) for k in served), "then a model trained again"
