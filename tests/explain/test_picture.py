"""The PNG of an explanation: a real image, with the subgraph the paths walk."""

from __future__ import annotations

from kgrec.explain.picture import draw_explanations, explanation_graph


def test_picture_is_a_png_of_the_paths(tiny_run, tmp_path):
    exps = tiny_run.explain("u2", k=2, paths=3)
    out = draw_explanations(exps, tiny_run.names, tmp_path / "pics" / "u2.png", title="u2")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000
    graph = explanation_graph(exps, tiny_run.names)
    path_edges = {(s, d) for e in exps for p in e.paths for s, _, d in p.edges()}
    assert set(graph.edges) == path_edges
    assert {graph.nodes[e.item]["role"] for e in exps} == {"recommended"}
    assert graph.nodes[exps[0].user]["layer"] == 0


def test_picture_of_nothing_still_draws(tiny_run, tmp_path):
    out = draw_explanations([], tiny_run.names, tmp_path / "empty.png")
    assert out.read_bytes()[:4] == b"\x89PNG"
