"""A two-model, two-seed suite on a tiny graph: runs, skips finished runs, writes the table."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from kgrec.bench import load_suite
from kgrec.bench.report import paired_rows
from kgrec.bench.runner import run_suite
from kgrec.bench.suite import run_folder
from kgrec.eval.paired import write_per_user
from kgrec.experiment import load_experiment
from kgrec.errors import KgrecError

BASE = """[model]
dim = 8
layers = 1
use_text = false
[train]
epochs = 3
batch_size = 64
lr = 0.01
"""


@pytest.fixture
def suite_file(tmp_path, click_graph):
    clicks = [(u, (u * 3 + j) % 20, j) for u in range(30) for j in range(6)]
    click_graph(tmp_path / "g", clicks, num_items=20, genres=3, relation="http://x/g")
    (tmp_path / "base.toml").write_text(BASE)
    (tmp_path / "suite.toml").write_text(
        '[bench]\nname = "tiny"\nbase = "base.toml"\nseeds = [1, 2]\n'
        'datasets = [{ name = "toy", graph = "g" }]\n'
        '[[bench.models]]\nname = "Popularity"\nkind = "popularity"\n'
        '[[bench.models]]\nname = "GNN no KG"\n[bench.models.model]\nuse_kg = false\n'
    )
    return tmp_path / "suite.toml"


@pytest.mark.slow
def test_suite_runs_and_reports(suite_file, tmp_path):
    suite = load_suite(suite_file)
    assert [m.name for m in suite.models] == ["Popularity", "GNN no KG"]
    assert suite.models[1].config.model.use_kg is False and suite.models[1].config.model.dim == 8
    out = run_suite(suite, tmp_path / "results", log=lambda *a: None)
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 4 and set(runs["seed"]) == {1, 2}
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["model"]) == {"Popularity", "GNN no KG"}
    gnn = runs[runs["model"] == "GNN no KG"]["recall@20"]
    row = summary[summary["model"] == "GNN no KG"].iloc[0]
    assert row["recall@20_mean"] == pytest.approx(gnn.mean())
    assert row["recall@20_std"] == pytest.approx(gnn.std(ddof=1))
    md = (out / "results.md").read_text()
    assert "| Popularity |" in md and "s/epoch" in md and "Hardware" in md
    assert "Beyond accuracy and by group" in md and "| AUC |" in md.replace("| model | AUC |", "| AUC |")
    popularity = runs[runs["model"] == "Popularity"].iloc[0]
    assert 0 <= popularity["auc"] <= 1 and 0 < popularity["coverage@20"] <= 1
    assert popularity["ild@20"] > 0  # the toy graph's items have genres
    assert (out / "toy-metrics.png").stat().st_size > 0 and (out / "toy-validation-ndcg.png").stat().st_size > 0
    for model in ("popularity", "gnn-no-kg"):  # every run keeps its per-user test metrics for paired comparisons
        per_user = pd.read_csv(out / "runs" / "toy" / model / "seed-1" / "test_per_user.csv")
        assert per_user["ndcg@20"].mean() == pytest.approx(runs[(runs["model"] == suite.models[0 if model == "popularity" else 1].name) & (runs["seed"] == 1)]["ndcg@20"].iloc[0])

    # a second call skips finished runs: their results are untouched
    stamp = (out / "runs" / "toy" / "gnn-no-kg" / "seed-1" / "results.json").stat().st_mtime_ns
    run_suite(suite, tmp_path / "results", log=lambda *a: None)
    assert (out / "runs" / "toy" / "gnn-no-kg" / "seed-1" / "results.json").stat().st_mtime_ns == stamp


@pytest.mark.slow
def test_a_run_whose_configuration_changed_is_run_again(suite_file, tmp_path):
    suite = load_suite(suite_file)
    out = run_suite(suite, tmp_path / "results", only=["GNN no KG"], log=lambda *a: None)
    results = out / "runs" / "toy" / "gnn-no-kg" / "seed-1" / "results.json"
    stamp = results.stat().st_mtime_ns
    suite.models[1].config.model.layers = 2  # the suite file changed since the run
    said = []
    run_suite(suite, tmp_path / "results", only=["GNN no KG"], log=said.append)
    assert results.stat().st_mtime_ns != stamp
    assert load_experiment(results.parent / "config.toml").model.layers == 2
    assert any("configuration changed" in line for line in said)


def test_ease_row_picks_its_l2_on_validation(suite_file, tmp_path):
    text = suite_file.read_text() + '[[bench.models]]\nname = "EASE"\nkind = "ease"\n'
    suite_file.write_text(text)
    out = run_suite(load_suite(suite_file), tmp_path / "results", only=["EASE"], log=lambda *a: None)
    res = json.loads((out / "runs" / "toy" / "ease" / "seed-1" / "results.json").read_text())
    tried = {float(k): v for k, v in res["ease"]["tried"].items()}
    assert res["valid"]["ndcg@20"] == max(tried.values()) == tried[res["ease"]["l2"]]
    assert 0.0 < res["test"]["recall@20"] <= 1.0


def test_suite_is_also_an_experiment_config(suite_file):
    cfg = load_experiment(suite_file)
    assert cfg.model.dim == 8 and cfg.train.epochs == 3


def test_bad_suites(tmp_path):
    (tmp_path / "a.toml").write_text("[model]\ndim = 8\n")
    with pytest.raises(KgrecError, match="no \\[bench\\] table"):
        load_suite(tmp_path / "a.toml")
    (tmp_path / "b.toml").write_text('[bench]\ndatasets = [{ name = "x", graph = "g" }]\n[[bench.models]]\nname = "m"\nkind = "magic"\n')
    with pytest.raises(KgrecError, match="kind must be one of"):
        load_suite(tmp_path / "b.toml")
    (tmp_path / "c.toml").write_text('[bench]\ndatasets = [{ name = "x", graph = "g" }]\n[[bench.models]]\nname = "m"\n[bench.models.model]\nlayerz = 2\n')
    with pytest.raises(KgrecError, match="layerz"):
        load_suite(tmp_path / "c.toml")
    (tmp_path / "d.toml").write_text('[bench]\ndatasets = [{ name = "x", graph = "g" }]\n[[bench.models]]\nname = "kgrec, 2 layers"\n')
    with pytest.raises(KgrecError, match="has a comma, so --only"):
        load_suite(tmp_path / "d.toml")


def test_rows_are_compared_with_the_reference_user_by_user(suite_file, tmp_path):
    suite_file.write_text(suite_file.read_text().replace('seeds = [1, 2]\n', 'seeds = [1, 2]\nreference = "Popularity"\n'))
    suite = load_suite(suite_file)
    assert suite.reference == "Popularity"
    out = tmp_path / "results"
    users = range(60)
    for seed, shift in ((1, 0.0), (2, 0.2)):  # the GNN row: 0.1 better on average over its two seeds
        for slug, values in (("popularity", [0.3] * 60), ("gnn-no-kg", [0.3 + shift] * 60)):
            folder = run_folder(out, "toy", {"popularity": "Popularity", "gnn-no-kg": "GNN no KG"}[slug], seed)
            folder.mkdir(parents=True)
            write_per_user(pd.DataFrame({"user": users, "ndcg@20": values}), folder)
    (name, r), = paired_rows(suite, out, "toy", "ndcg@20")
    assert name == "GNN no KG" and r["users"] == 60
    assert r["difference"] == pytest.approx(0.1) and r["relative"] == pytest.approx(1 / 3)
    assert paired_rows(suite, out, "toy", "recall@20") == []  # not kept: nothing to compare


def test_per_seed_splits_reseed_the_split_with_the_training_seed(suite_file):
    fixed = load_suite(suite_file)
    assert fixed.split == "fixed"
    assert [fixed.config_for(fixed.models[1], s).eval.split_seed for s in (1, 2)] == [fixed.models[1].config.eval.split_seed] * 2
    suite_file.write_text(suite_file.read_text().replace('seeds = [1, 2]\n', 'seeds = [1, 2]\nsplit = "per-seed"\n'))
    suite = load_suite(suite_file)
    configs = [suite.config_for(suite.models[1], s) for s in (1, 2)]
    assert [(c.train.seed, c.eval.split_seed) for c in configs] == [(1, 1), (2, 2)]
    assert suite.models[1].config.train.seed != 2 or suite.models[1].config.eval.split_seed != 2  # the row's own config is untouched
    suite_file.write_text(suite_file.read_text().replace('split = "per-seed"', 'split = "random"'))
    with pytest.raises(KgrecError, match="bench.split = 'random' is not one of: fixed, per-seed"):
        load_suite(suite_file)


def test_the_reference_must_be_a_row(suite_file):
    suite_file.write_text(suite_file.read_text().replace('seeds = [1, 2]\n', 'seeds = [1, 2]\nreference = "kgrec"\n'))
    with pytest.raises(KgrecError, match="bench.reference = 'kgrec' is not a row of the suite"):
        load_suite(suite_file)


@pytest.mark.slow
def test_parallel_jobs_give_the_same_metrics_as_one_at_a_time(suite_file, tmp_path):
    suite = load_suite(suite_file)
    serial = run_suite(suite, tmp_path / "serial", log=lambda *a: None)
    parallel = run_suite(suite, tmp_path / "parallel", jobs=2, log=lambda *a: None)
    a = pd.read_csv(serial / "runs.csv").sort_values(["model", "seed"]).reset_index(drop=True)
    b = pd.read_csv(parallel / "runs.csv").sort_values(["model", "seed"]).reset_index(drop=True)
    for col in ("recall@20", "ndcg@20"):  # workers run on cores/jobs threads: float sums may round apart
        assert b[col].tolist() == pytest.approx(a[col].tolist(), abs=1e-4), col
    assert "2 runs at a time" in (parallel / "results.md").read_text()
    with pytest.raises(KgrecError, match="--jobs"):
        run_suite(suite, tmp_path / "x", jobs=0, log=lambda *a: None)


def test_a_slow_row_runs_fewer_seeds_and_the_table_says_so(suite_file, tmp_path):
    text = suite_file.read_text().replace('kind = "popularity"\n', 'kind = "popularity"\nseeds = [2]\n')
    suite_file.write_text(text)
    suite = load_suite(suite_file)
    assert suite.seeds_for(suite.models[0]) == [2] and suite.seeds_for(suite.models[1]) == [1, 2]
    out = run_suite(suite, tmp_path / "results", only=["Popularity"], log=lambda *a: None)
    runs = pd.read_csv(out / "runs.csv")
    assert runs["seed"].tolist() == [2]
    assert "| Popularity | " in (md := (out / "results.md").read_text()) and "(1 seed) | 1 |" in md
    suite_file.write_text(text.replace("seeds = [2]\n", "seeds = [3]\n"))
    with pytest.raises(KgrecError, match=r"bench.models\[0\].seeds must be a non-empty subset of bench.seeds \[1, 2\], got \[3\]"):
        load_suite(suite_file)


def test_suite_rows_skip_the_content_model_unless_asked(suite_file):
    text = suite_file.read_text() + '[[bench.models]]\nname = "with cold start"\n[bench.models.coldstart]\ncontent = "distill"\n'
    suite_file.write_text(text)
    suite = load_suite(suite_file)
    contents = {m.name: m.config.coldstart.content for m in suite.models}
    assert contents == {"Popularity": "none", "GNN no KG": "none", "with cold start": "distill"}


def test_a_scenes_suite_reports_each_scene():
    import pandas as pd

    from kgrec.bench.report import _scene_table

    table = pd.DataFrame(
        {"model": ["global", "adapted"], "seeds": [3, 1],
         "scene home ndcg@20_mean": [0.2, 0.3], "scene home ndcg@20_std": [0.01, 0.0],
         "scene home recall@20_mean": [0.4, 0.5], "scene search ndcg@20_mean": [0.1, None],
         "scene search ndcg@20_std": [0.0, None], "scene search recall@20_mean": [0.2, None]}
    )  # fmt: skip
    lines = _scene_table(table)
    assert lines[2] == "| model | home | search |"
    assert lines[4] == "| global | 0.2000 ± 0.0100 / 0.4000 | 0.1000 ± 0.0000 / 0.2000 |"
    assert lines[5] == "| adapted | 0.3000 / 0.5000 | - |"
    assert _scene_table(table[["model", "seeds"]]) == []
