"""The trained-run object (kgrec.runs.Run, kgrec.load_run) and the analysis subcommands, on tiny runs."""

from __future__ import annotations

import pytest
import torch

from kgrec.cli.main import main
from kgrec.errors import KgrecError
from kgrec.runs import Run, load_run


NEW = """<http://example.org/item/n1> <http://www.w3.org/2000/01/rdf-schema#label> "New comedy" ;
    <http://schema.org/description> "A comedy film." ; <http://schema.org/genre> <http://example.org/genre/comedy> .
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_helper):
    return tiny_helper.train_tiny(tmp_path_factory.mktemp("api-run"))


def test_recommend_ranks_by_the_full_scores_without_seen_items(trained):
    run = trained.without_added_items()
    recs = run.recommend(["u0", "u5"], k=4)
    assert list(recs.columns) == ["user", "item", "rank", "score"] and len(recs) == 8
    seen = run.sets().seen_at_test()
    for user in ("u0", "u5"):
        node = run.kg.user_index[user]
        scores = run.full_scores(torch.tensor([node]))[0].clone()
        scores[seen.row(node)] = -float("inf")
        best = torch.topk(scores, 4).indices.tolist()
        mine = recs[recs["user"] == user]
        assert mine["item"].tolist() == [run.item_ids[i] for i in best]
        assert mine["score"].to_numpy() == pytest.approx(scores[best].numpy(), abs=1e-5)
    with pytest.raises(KgrecError, match="unknown user"):
        run.recommend(["nobody"])


def test_explain_similar_bundles(trained):
    run = trained.without_added_items()
    exps = run.explain("u0", k=2, paths=2)
    assert [e.rank for e in exps] == [1, 2] and all(e.paths for e in exps)
    sim = run.similar("m0", k=3)
    assert list(sim.columns) == ["item", "label", "rank", "score"] and "m0" not in set(sim["item"])
    assert all(int(i[1:]) % 2 == 0 for i in sim["item"])  # comedies are like comedies
    bundles = run.bundles("m0", k=3)
    assert list(bundles.columns) == ["item", "label", "together", "lift", "confidence"] and len(bundles)
    with pytest.raises(KgrecError, match="unknown item"):
        run.similar("zzz")


def test_cold_users_from_items_and_text(trained, tiny_helper):
    run = trained.without_added_items()
    recs = run.recommend_for_items(["m1", "m3"], k=3)
    assert not {"m1", "m3"} & set(recs["item"]) and all(int(i[1:]) % 2 == 1 for i in recs["item"])
    by_text = run.recommend_for_text("a drama film", k=3, encoder=tiny_helper.HashingEncoder())
    assert len(by_text) == 3 and all(int(i[1:]) % 2 == 1 for i in by_text["item"])
    with pytest.raises(KgrecError, match="empty"):
        run.recommend_for_text("  ", encoder=tiny_helper.HashingEncoder())


def test_added_items_are_recommended_saved_and_reloaded(trained, tmp_path, tiny_helper):
    (tmp_path / "new.ttl").write_text(NEW)
    run = trained.without_added_items()
    cold = run.add_items([tmp_path / "new.ttl"], save=True, encoder=tiny_helper.HashingEncoder())
    assert cold.ids == ["n1"] and run.item_ids[-1] == "n1"
    recs = run.recommend(None, k=20)
    comedy_fans = recs[recs["user"].isin([f"u{u}" for u in range(0, 24, 2)]) & (recs["item"] == "n1")]
    drama_fans = recs[recs["user"].isin([f"u{u}" for u in range(1, 24, 2)]) & (recs["item"] == "n1")]
    assert len(comedy_fans) == len(drama_fans) == 12  # recommendable to everyone...
    assert comedy_fans["score"].mean() > drama_fans["score"].mean()  # ...and liked by comedy fans
    assert run.similar("n1", k=1)["item"].iloc[0] in {f"m{i}" for i in range(0, 16, 2)}
    assert run.explain("u0", item="n1", paths=1)[0].paths[0].kind == "knowledge"
    assert (trained.run_dir / "added_items" / "items.csv").is_file()
    # what load_run does with the saved items: they come back, with the same embeddings
    again = Run(trained.config, trained.kg, trained.split, trained.model, trained.trained_graph, trained.device, trained.run_dir, content=trained.content)
    assert again.item_ids == run.item_ids
    assert torch.allclose(again.item_embeddings(), run.item_embeddings(), atol=1e-5)
    with pytest.raises(KgrecError, match="already in the run"):
        again.add_items([tmp_path / "new.ttl"], items=["n1"], encoder=tiny_helper.HashingEncoder())


# --------------------------------------------------------------------------- on disk, via the CLI
@pytest.fixture(scope="module")
def disk_run(tmp_path_factory, tiny_helper):
    """A run folder trained by kgrec.runs.train_run, text features off (no text model needed)."""
    from kgrec.config import ExperimentConfig, ModelConfig, TrainConfig
    from kgrec.graph.build import build_graph
    from kgrec.graph.store import save_graph
    from kgrec.runs import train_run

    folder = tmp_path_factory.mktemp("disk")
    save_graph(build_graph(tiny_helper.tiny_tables(), name="tiny"), folder / "graph")
    config = ExperimentConfig(model=ModelConfig(dim=16, layers=2, use_text=False), train=TrainConfig(epochs=5, batch_size=64, lr=0.02, device="cpu"))
    train_run(folder / "graph", config, folder / "run", progress=False, log=lambda *_: None)
    return folder / "run"


def _cli(argv: list[str]) -> int:
    """The ``kgrec`` command, errors raised (as the console script would report them)."""
    from kgrec.cli.main import build_parser

    args = build_parser().parse_args(argv)
    return args.func(args)


def test_cli_explain_similar_new_user(disk_run, capsys, tmp_path):
    assert _cli(["explain", "--run", str(disk_run), "--user", "u0", "--k", "2", "--png", str(tmp_path / "u0.png"), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "1. Movie" in out and "user u0 --click--> " in out and (tmp_path / "u0.png").read_bytes()[:4] == b"\x89PNG"
    assert _cli(["similar", "--run", str(disk_run), "--item", "m0", "--k", "3", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "more like this" in out and "often taken together" in out
    assert _cli(["new-user", "--run", str(disk_run), "--liked", "m0,m2", "--k", "3", "--device", "cpu"]) == 0
    assert "top 3 for a new user" in capsys.readouterr().out
    with pytest.raises(KgrecError, match="either --text"):
        _cli(["new-user", "--run", str(disk_run), "--device", "cpu"])


def test_cli_add_items_then_load_run_sees_them(disk_run, capsys, tmp_path):
    (tmp_path / "new.ttl").write_text(NEW)
    assert _cli(["add-items", "--run", str(disk_run), "--rdf", str(tmp_path / "new.ttl"), "--users", "u0", "--k", "20", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "1 item(s) embedded without retraining: n1" in out and "<- new" in out
    run = load_run(disk_run, device="cpu")
    assert "n1" in run.item_ids and "n1" in set(run.recommend(["u0"], k=20)["item"])
    assert "n1" not in load_run(disk_run, device="cpu", added_items=False).item_ids


@pytest.fixture
def run_with_n1(disk_run, tmp_path, capsys):
    """A copy of the disk run (no added items), then `kgrec add-items` of NEW (item n1)."""
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(disk_run, run_dir)
    shutil.rmtree(run_dir / "added_items", ignore_errors=True)
    (tmp_path / "new.ttl").write_text(NEW)
    assert _cli(["add-items", "--run", str(run_dir), "--rdf", str(tmp_path / "new.ttl"), "--device", "cpu"]) == 0
    capsys.readouterr()
    return run_dir


def test_added_items_reach_recommend_export_and_sparql(run_with_n1, capsys, tmp_path):
    """Every door into the run sees an added item, ranked by the same scores (issue 12)."""
    import networkx as nx
    import pandas as pd

    run_dir = run_with_n1

    recs_csv = tmp_path / "recs.csv"
    assert _cli(["recommend", "--run", str(run_dir), "--users", "u0", "--k", "20", "--out", str(recs_csv), "--device", "cpu"]) == 0
    cli_recs = pd.read_csv(recs_csv, dtype={"user": str, "item": str})
    assert "n1" in set(cli_recs["item"])
    api_recs = load_run(run_dir, device="cpu").recommend(["u0"], k=20)
    assert list(cli_recs["item"]) == list(api_recs["item"])
    assert cli_recs["score"].to_numpy() == pytest.approx(api_recs["score"].to_numpy(), abs=1e-5)

    from kgrec.runs import read_run_meta

    graph_dir = read_run_meta(run_dir)["graph"]
    out = tmp_path / "g.graphml"
    assert _cli(["export", "--graph", str(graph_dir), "--run", str(run_dir), "--k", "20", "--out", str(out), "--device", "cpu"]) == 0
    g = nx.read_graphml(out)
    added = [n for n, d in g.nodes(data=True) if "n1" in str(n) or d.get("label") == "New comedy"]
    assert added, "the exported graph has no node for the added item"
    assert any(v in added for _, v, d in g.edges(data=True) if "recommend" in str(d.get("type", d.get("relation", ""))))

    query = "SELECT ?i WHERE { ?u kgrec:recommended ?i }"
    assert _cli(["sparql", "--graph", str(graph_dir), "--run", str(run_dir), "--k", "20", "--device", "cpu", query]) == 0
    assert "n1" in capsys.readouterr().out


def test_json_output_for_scripts(disk_run, capsys, tmp_path):
    import json

    assert _cli(["evaluate", "--run", str(disk_run), "--format", "json", "--device", "cpu"]) == 0
    assert 0 <= json.loads(capsys.readouterr().out)["ndcg@20"] <= 1
    assert _cli(["similar", "--run", str(disk_run), "--item", "m0", "--k", "3", "--format", "json", "--device", "cpu"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["item"] == "m0" and len(out["similar"]) == 3 and {"item", "score"} <= set(out["similar"][0])
    assert _cli(["explain", "--run", str(disk_run), "--user", "u0", "--k", "2", "--no-png", "--format", "json", "--device", "cpu"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["user"] == "u0" and len(out["explanations"]) == 2
    first = out["explanations"][0]
    assert first["rank"] == 1 and all(p["nodes"][0]["id"] == "u0" and p["nodes"][-1]["id"] == first["item"] for p in first["paths"])
    assert _cli(["new-user", "--run", str(disk_run), "--liked", "m0,m2", "--k", "3", "--format", "json", "--device", "cpu"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["liked"] == ["m0", "m2"] and len(out["recommendations"]) == 3


def test_recommend_without_out_prints_a_summary_and_says_where_the_rest_goes(disk_run, capsys):
    assert _cli(["recommend", "--run", str(disk_run), "--k", "2", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert out.count("user ") == 3 and "more user(s): write every list with --out FILE.csv" in out


def test_add_items_twice_is_refused_and_force_replaces(run_with_n1, capsys, tmp_path):
    run_dir = run_with_n1
    with pytest.raises(KgrecError, match="already in the run: n1.*--force"):
        _cli(["add-items", "--run", str(run_dir), "--rdf", str(tmp_path / "new.ttl"), "--items", "n1", "--device", "cpu"])
    (tmp_path / "new2.ttl").write_text(NEW.replace("New comedy", "New comedy, recut"))
    assert _cli(["add-items", "--run", str(run_dir), "--rdf", str(tmp_path / "new2.ttl"), "--force", "--device", "cpu"]) == 0
    run = load_run(run_dir, device="cpu")
    assert run.added_item_ids == ["n1"] and run.item_label("n1") == "New comedy, recut"
