"""``kgrec bench speed`` on the bundled demo data: every figure there and positive, steps skippable,
bad arguments refused with one clear line, ``kgrec bench SUITE.toml`` still parsed as before."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import pytest
import torch

from kgrec.bench.speed import STEPS, SpeedOptions, format_table, run_measured, run_speed
from kgrec.cli.bench import cmd_bench, cmd_bench_speed
from kgrec.cli.main import build_parser, main
from kgrec.errors import KgrecError

pytestmark = pytest.mark.slow  # starts processes or trains for real

ROOT = Path(__file__).resolve().parents[2]
DEMO_SPEC = ROOT / "graphs" / "demo.toml"

TINY = """[model]
dim = 8
layers = 1
use_text = false
[train]
batch_size = 2048
lr = 0.01
kg_loss_weight = 0.0
[eval]
ks = [10, 20]
"""

FIGURES = {
    "build": ["seconds", "build_seconds_reported", "peak_rss_bytes"],
    "encode": ["texts", "seconds", "texts_per_second", "model_load_seconds"],
    "train": ["epochs", "seconds_per_epoch", "seconds_to_best", "seconds_to_target", "wall_seconds", "best_ndcg@20", "message_passing_edges"],
    "eval": ["seconds", "recommend_all_seconds", "users_evaluated", "users_per_second"],
}


def quiet(*args, **kwargs):
    pass


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("speed-config") / "tiny.toml"
    path.write_text(TINY)
    return path


@pytest.fixture(scope="module")
def measured(tmp_path_factory, config_file):
    """One full run through the command line (every step) on the demo spec; its JSON and work folder."""
    tmp = tmp_path_factory.mktemp("speed")
    out = tmp / "results.json"
    argv = [
        "bench", "speed", "--spec", str(DEMO_SPEC), "--config", str(config_file), "--device", "cpu",
        "--epochs", "3", "--texts", "12", "--text-batch-size", "8", "--eval-repeats", "1",
        "--target-ndcg", "0.001", "--workdir", str(tmp / "work"), "--out", str(out),
    ]
    assert main(argv) == 0
    return json.loads(out.read_text()), tmp / "work"


def test_json_has_every_key_and_positive_figures(measured):
    result, _ = measured
    assert result["format"] == "kgrec-speed"
    env = result["environment"]
    for key in ("device", "device_name", "torch_version", "kgrec_version", "python_version", "cpu_count", "torch_threads"):
        assert env[key] not in (None, ""), key
    assert env["device"] == "cpu" and env["kgrec_version"] == __import__("kgrec").__version__
    sizes = result["graph"]
    assert (sizes["users"], sizes["items"], sizes["entities"]) == (300, 200, 122)
    for key in ("interactions", "triples", "edges"):
        assert sizes[key] > 0
    assert sizes["edges"] == 2 * (sizes["interactions"] + sizes["triples"])  # both directions
    for step, keys in FIGURES.items():
        assert result[step]["status"] == "measured", step
        for key in keys:
            assert result[step][key] > 0, f"{step}.{key}"
    train = result["train"]
    assert train["epochs"] == 3 and len(train["epoch_seconds"]) == 3 and train["target_reached"] is True
    assert train["seconds_per_epoch"] == pytest.approx(statistics.median(train["epoch_seconds"][1:]))  # warm-up left out
    assert train["peak_gpu_memory_bytes"] is None and result["eval"]["peak_gpu_memory_bytes"] is None  # CPU: n/a
    assert result["encode"]["texts"] == 12 and result["encode"]["precision"] == "fp32"
    assert result["eval"]["users_evaluated"] <= sizes["users"]


def test_table_shows_every_step(measured):
    table = format_table(measured[0])
    for label in ("build peak RSS", "texts/s", "per epoch", "NDCG@20 >= 0.001", "train peak GPU memory  n/a", "eval (full ranking)"):
        assert label in table, label


def test_steps_can_be_skipped(measured, config_file):
    _, work = measured
    graph = str(work / "graph")  # the graph the full run built and kept
    r = run_speed(
        SpeedOptions(graph=graph, config=str(config_file), device="cpu", skip=["build", "encode", "eval"], epochs=2), log=quiet
    )
    assert [r[s]["status"] for s in STEPS] == ["skipped", "skipped", "measured", "skipped"]
    assert r["train"]["seconds_per_epoch"] > 0 and r["graph"]["users"] == 300
    r = run_speed(SpeedOptions(graph=graph, config=str(config_file), device="cpu", skip=["train", "encode"], eval_repeats=1), log=quiet)
    assert r["build"] == {"status": "skipped", "reason": "no --spec or --synth to build from"}
    assert r["eval"]["weights"].startswith("untrained") and r["eval"]["seconds"] > 0
    assert "skipped" in format_table(r)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--graph", "G", "--skip", "build,fast"], "unknown step 'fast'"),
        (["--graph", "G", "--skip", "build,encode,train,eval"], "nothing to measure"),
        (["--spec", "S", "--synth", "amazon-book"], "either --spec or --synth"),
        ([], "give --spec SPEC.toml, --synth PRESET|DIR or --graph DIR"),
        (["--spec", "S", "--skip", "build"], "need a graph"),
        (["--spec", "S", "--epochs", "1"], "--epochs 1 leaves no epoch to time"),
        (["--spec", "S", "--epochs", "0"], "--epochs must be at least 1"),
        (["--spec", "S", "--target-ndcg", "1.5"], "--target-ndcg must lie in (0, 1]"),
        (["--spec", "S", "--texts", "0"], "--texts must be at least 1"),
        (["--spec", "S", "--text-batch-size", "0"], "--text-batch-size"),
        (["--spec", "S", "--eval-repeats", "0"], "--eval-repeats"),
        (["--spec", "missing.toml"], "missing.toml: graph spec not found"),
        (["--spec", "S", "--config", "missing.toml"], "experiment config not found"),
        (["--spec", "S", "--device", "tpu:x"], "unknown device"),
        (["--graph", "not-a-graph", "--skip", "build"], "not a kgrec graph"),
        (["--spec", "S", "--out", "S"], "S: results are already there; add --force"),
    ],
)
def test_bad_arguments_give_one_clear_line(extra, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "S").write_text('name = "s"\n[interactions]\npath = "log.csv"\n')
    (tmp_path / "not-a-graph").mkdir()
    assert main(["bench", "speed", "--workdir", str(tmp_path / "w"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kgrec: error: ") and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_synth_folder_or_preset(tmp_path):
    from kgrec.bench.speed import synth_spec
    from kgrec.datasets.synth import write_synth

    folder = tmp_path / "synth"
    write_synth(folder, users=20, items=10, interactions=60, entities=12, triples=40)
    spec, info = synth_spec(str(folder), tmp_path, log=quiet)
    assert spec == folder / "graph.toml" and info == {"synth": str(folder)}
    (tmp_path / "empty").mkdir()
    with pytest.raises(KgrecError, match="no graph.toml"):
        synth_spec(str(tmp_path / "empty"), tmp_path, log=quiet)
    with pytest.raises(KgrecError, match="neither a folder nor a preset .presets: amazon-book, amazon-book-10x"):
        run_speed(SpeedOptions(synth="amazon-boook", workdir=str(tmp_path)), log=quiet)


def test_bench_suite_command_unchanged():
    parse = build_parser().parse_args
    for argv in (["bench", "s.toml"], ["bench", "--force", "s.toml"], ["bench", "suite", "s.toml", "--only", "a,b"]):
        args = parse(argv)
        assert args.func is cmd_bench and args.suite == "s.toml", argv
    assert parse(["bench", "--only", "x", "s.toml"]).only == "x"
    assert parse(["bench", "speed", "--graph", "g", "--epochs", "3"]).func is cmd_bench_speed


def test_peak_rss_is_the_childs_own(tmp_path):
    """wait4 reports each child's peak, not the largest of every child so far."""
    big = [sys.executable, "-c", "b = bytearray(300 * 2**20); b[::4096] = b'x' * len(b[::4096])"]
    small = [sys.executable, "-c", "pass"]
    code, wall, peak_big = run_measured(big, tmp_path / "big.log")
    assert code == 0 and wall > 0 and peak_big > 300 * 2**20
    code, _, peak_small = run_measured(small, tmp_path / "small.log")
    assert code == 0 and 0 < peak_small < 200 * 2**20


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_figures(measured, config_file):
    _, work = measured
    r = run_speed(
        SpeedOptions(graph=str(work / "graph"), config=str(config_file), device="cuda", skip=["build"],
                     epochs=3, texts=64, text_batch_size=32, eval_repeats=2),
        log=quiet,
    )
    assert r["environment"]["device"].startswith("cuda") and r["environment"]["gpu_memory_bytes"] > 0
    assert r["encode"]["precision"] == "fp16 autocast" and r["encode"]["texts_per_second"] > 0
    assert r["train"]["peak_gpu_memory_bytes"] > 0 and r["eval"]["peak_gpu_memory_bytes"] > 0
    assert r["train"]["seconds_per_epoch"] > 0 and r["eval"]["seconds"] > 0
