"""Paths that explain a recommendation: they exist in the training graph and are scored sensibly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from kgrec.explain.paths import KINDS, Path, PathFinder, _diverse, format_path, relation_label


def _training_edges(g) -> set[tuple[int, str, int]]:
    names = g.relation_names
    return {(s, names[t], d) for s, d, t in zip(g.edge_index[0].tolist(), g.edge_index[1].tolist(), g.edge_type.tolist())}


def test_every_edge_of_every_path_exists_in_the_training_graph(tiny_run):
    edges = _training_edges(tiny_run.graph)
    finder = tiny_run.path_finder()
    checked = 0
    for user in tiny_run.user_ids[:8]:
        for exp in tiny_run.explain(user, k=3, paths=4):
            for path in exp.paths:
                assert path.nodes[0] == tiny_run._user_node(user) and path.nodes[-1] == exp.item
                for edge in path.edges():
                    assert edge in edges, edge
                    assert finder.has_edge(*edge)
                    checked += 1
    assert checked > 50


def test_held_out_pairs_never_appear_in_a_path(tiny_run):
    split = tiny_run.split
    held = pd.concat([split.valid, split.test])
    num_users = tiny_run.kg.num_users
    held_pairs = {(u, num_users + i) for u, i in zip(held["user"], held["item"])}
    for user in tiny_run.user_ids:
        node = tiny_run._user_node(user)
        truth = [num_users + i for i in held.loc[held["user"] == node, "item"]]
        for item in truth[:2]:  # explaining a held-out item must not walk its own held-out edge
            for path in tiny_run.path_finder().paths(node, item, k=5):
                for s, _, d in path.edges():
                    assert (s, d) not in held_pairs and (d, s) not in held_pairs


def test_path_kinds_shapes_and_scores(tiny_run):
    finder = tiny_run.path_finder()
    unit = torch.nn.functional.normalize(tiny_run.z, dim=-1)
    exps = tiny_run.explain("u0", k=2, paths=6)
    kinds = {p.kind for e in exps for p in e.paths}
    assert kinds <= set(KINDS) and {"knowledge", "collaborative"} <= kinds
    for e in exps:
        assert e.score == pytest.approx(float(tiny_run.z[e.user] @ tiny_run.z[e.item]), rel=1e-5)
        assert [p.score for p in e.paths] == sorted((p.score for p in e.paths), reverse=True)
        for p in e.paths:
            cos = [float(unit[a] @ unit[b]) for a, _, b in p.edges()]
            assert p.edge_scores == pytest.approx(cos, abs=1e-5)
            assert p.score == pytest.approx(np.mean(cos), abs=1e-5)
            types = [tiny_run.names.kind(n) for n in p.nodes]
            if p.kind == "collaborative":
                assert types == ["user", "item", "user", "item"]
            elif p.kind == "knowledge":
                assert types[:2] == ["user", "item"] and types[2] not in ("user", "item") and types[3] == "item"
    # restricting kinds is honoured
    only = finder.paths(exps[0].user, exps[0].item, k=3, kinds=("knowledge",))
    assert only and all(p.kind == "knowledge" for p in only)


def test_a_user_without_history_has_no_path_and_ends_are_checked(tiny_run):
    from kgrec.coldstart.extend import NewEdges, extend_graph
    from kgrec.errors import KgrecError

    g = extend_graph(tiny_run.graph, torch.zeros(1, dtype=torch.long), NewEdges([], [], []))
    z = torch.cat([tiny_run.z, torch.randn(1, tiny_run.z.size(1))])
    finder = PathFinder(g, z)
    assert finder.paths(g.num_nodes - 1, tiny_run.item_nodes[0]) == []
    entity = g.num_users + g.num_items
    with pytest.raises(KgrecError, match="from a user node to an item node"):
        finder.paths(entity, tiny_run.item_nodes[0])


def test_formatting_reads_in_walking_direction(tiny_run):
    exp = tiny_run.explain("u1", k=1, paths=3)[0]
    text = tiny_run.format(exp)
    assert text.startswith("1. Movie") and "model score" in text
    line = format_path(exp.paths[0], tiny_run.names)
    assert line.startswith("user u1 --click--> Movie")
    assert relation_label("rev_item:genre:Genre") == ("genre", True)
    assert relation_label("click") == ("click", False)


def test_explaining_one_given_item(tiny_run):
    (exp,) = tiny_run.explain("u0", item="m2", paths=2)
    assert exp.rank is None and exp.item == tiny_run.item_nodes[tiny_run._item_pos("m2")]
    assert len(exp.paths) == 2


def test_the_pick_prefers_new_intermediate_nodes():
    def path(seen, mid, score):
        return Path("knowledge", (0, seen, mid, 9), ("click", "genre", "rev_genre"), (score,) * 3, score)

    ranked = [path(1, 5, 0.9), path(1, 6, 0.8), path(2, 5, 0.7), path(2, 6, 0.6), path(3, 7, 0.5)]
    assert [(p.nodes[1], p.nodes[2]) for p in _diverse(ranked, 2)] == [(1, 5), (2, 6)]
    # when fresh nodes run out, the best of the rest fill up
    assert [(p.nodes[1], p.nodes[2]) for p in _diverse(ranked, 4)] == [(1, 5), (1, 6), (2, 6), (3, 7)]


def test_the_pick_shows_each_kind_of_reason():
    def path(kind, seen, mid, score):
        return Path(kind, (0, seen, mid, 9), ("click", "x", "y"), (score,) * 3, score)

    ranked = [path("collaborative", 1, 5, 0.9), path("collaborative", 2, 6, 0.8), path("collaborative", 3, 7, 0.7), path("knowledge", 4, 8, 0.2)]
    assert [p.kind for p in _diverse(ranked, 2)] == ["collaborative", "knowledge"]
