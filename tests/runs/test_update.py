"""``kgrec update``: a trained run grown by a later day's interactions, users and films.

The new run is a normal run folder; the parent is never touched, not even by an update that
fails or is killed half-way; bad input stops before anything is written. The tests that train
and update for real are marked slow.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

import kgrec.runs.update as update_module
from kgrec.cli.main import main
from kgrec.errors import KgrecError
from kgrec.graph.append import node_map
from kgrec.runs import load_run, train_run
from kgrec.runs.update import update_run


@pytest.fixture(scope="module")
def trained(tmp_path_factory, stream_helper):
    """The base world and a run trained on it (shared: the tests copy nothing into it)."""
    folder = tmp_path_factory.mktemp("world")
    w = stream_helper.world(folder)
    train_run(w["graph"], stream_helper.config(item_item="ease"), folder / "run", progress=False, log=lambda *_: None)
    return w | {"run": folder / "run", "folder": folder}


def _quiet(*_):
    pass


@pytest.mark.slow
def test_update_writes_a_normal_run_and_leaves_the_parent_as_it_was(trained, stream_helper, tmp_path):
    before = stream_helper.files_of(trained["run"])
    out = tmp_path / "run2"
    results = update_run(trained["run"], trained["new_log"], out, rdf=[trained["new_rdf"]], log=_quiet)
    assert stream_helper.files_of(trained["run"]) == before

    record = json.loads((out / "update.json").read_text())
    assert record["parent"]["run"] == str(trained["run"].resolve())
    assert (record["added"]["users"], record["added"]["items"]) == (6, 3)
    assert record["added"]["pairs"]["train"] > 0 and record["fine_tuning"]["steps"] >= 0
    assert json.loads((out / "run.json").read_text())["parent"] == str(trained["run"].resolve())
    for name in ("config.toml", "model.safetensors", "results.json", "metrics.jsonl", "split/train.csv", "graph/manifest.json"):
        assert (out / name).is_file(), name

    run = load_run(out, device="cpu")  # what recommend / evaluate / explain open
    assert run.kg.num_users == 30 and run.kg.num_items == 21
    assert run.evaluate("test")["ndcg@20"] == pytest.approx(results["test"]["ndcg@20"], abs=1e-6)
    assert run.model.item_item.num_items == 21  # the item-item view was fitted again on the grown history
    recs = run.recommend(["u24"], k=5)  # a user first seen in the update
    assert len(recs) == 5
    assert run.explain("u0", k=1)


@pytest.mark.slow
def test_old_nodes_keep_their_trained_rows_until_the_first_step(trained, stream_helper, tmp_path):
    from kgrec.config import UpdateConfig

    out = tmp_path / "run2"
    update_run(trained["run"], trained["new_log"], out, rdf=[trained["new_rdf"]], settings=UpdateConfig(epochs=0), log=_quiet)
    parent, child = load_run(trained["run"], device="cpu"), load_run(out, device="cpu")
    ids = "node_input.id_embedding.weight"
    old, new = parent.model.state_dict()[ids], child.model.state_dict()[ids]
    shift = child.kg.num_users - parent.kg.num_users
    torch.testing.assert_close(new[: parent.kg.num_users], old[: parent.kg.num_users])
    items = slice(parent.kg.num_users, parent.kg.num_users + parent.kg.num_items)
    torch.testing.assert_close(new[items.start + shift : items.stop + shift], old[items])
    assert json.loads((out / "update.json").read_text())["fine_tuning"]["steps"] == 0


@pytest.mark.slow
def test_the_fold_in_moves_the_new_nodes_rows_and_nothing_else(trained, tmp_path):
    from kgrec.config import UpdateConfig

    grown, folded = tmp_path / "grown", tmp_path / "folded"
    update_run(trained["run"], trained["new_log"], grown, rdf=[trained["new_rdf"]], settings=UpdateConfig(epochs=0, fold_in_steps=0), log=_quiet)
    settings = UpdateConfig(epochs=0, fold_in_steps=20, fold_in_lr=0.05)
    update_run(trained["run"], trained["new_log"], folded, rdf=[trained["new_rdf"]], settings=settings, log=_quiet)
    a, b = load_run(grown, device="cpu"), load_run(folded, device="cpu")
    record = json.loads((folded / "update.json").read_text())["fold_in"]
    assert record["steps"] == 20 and record["pairs"] > 0
    ids = "node_input.id_embedding.weight"
    parent = load_run(trained["run"], device="cpu")
    rows = torch.as_tensor(node_map(parent.kg, b.kg))
    new = torch.ones(b.kg.num_nodes, dtype=torch.bool)
    new[rows[rows >= 0]] = False
    before, after = a.model.state_dict(), b.model.state_dict()
    torch.testing.assert_close(after[ids][~new], before[ids][~new])  # every old row as it was
    moved = (after[ids][new] - before[ids][new]).abs().sum(1) > 0
    new_users = b.kg.num_users - parent.kg.num_users
    assert new_users > 0 and moved[:new_users].all()  # the new users' rows were fitted (new nodes: the users first)
    for key in before:  # and every other weight as it was (the blend weight is chosen on validation afterwards)
        if key != ids and not key.startswith("item_item."):
            torch.testing.assert_close(after[key], before[key], msg=key)
    assert json.loads((grown / "update.json").read_text())["fold_in"]["steps"] == 0


def _fake_run(folder: Path) -> Path:
    """A folder that passes for a finished run (what the target checks look at)."""
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps({"format": "kgrec-run", "format_version": 1}))
    (folder / "results.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"")
    return folder


def test_an_out_that_exists_and_a_folder_that_is_not_a_run_stop_before_anything_is_written(tmp_path, capsys):
    parent = _fake_run(tmp_path / "parent")
    log = tmp_path / "new.csv"
    log.write_text("user,item\nu1,i1\n")
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    args = ["update", "--run", str(parent), "--interactions", str(log)]
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already exists" in err[0] and str(out) in err[0]
    assert [p.name for p in out.iterdir()] == ["keep.txt"]

    for bad_run, message in ((tmp_path / "nothing", "not a kgrec run folder"), (tmp_path / "half", "not a finished run")):
        bad_run.mkdir(exist_ok=True)
        if bad_run.name == "half":
            (bad_run / "run.json").write_text(json.dumps({"format": "kgrec-run", "format_version": 1}))
        assert main(["update", "--run", str(bad_run), "--interactions", str(log), "--out", str(tmp_path / "fresh")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    assert main([*args, "--out", str(parent / "inside")]) == 2
    assert "inside the parent run" in capsys.readouterr().err
    assert not (tmp_path / "fresh").exists() and not list(tmp_path.glob(".fresh*")) and not (parent / "inside").exists()
    with pytest.raises(KgrecError, match="already exists"):
        update_run(parent, log, out)


def test_a_run_with_scenes_is_refused_before_anything_is_written(tmp_path, capsys):
    parent = _fake_run(tmp_path / "parent")
    (parent / "config.toml").write_text('[scenes]\nmode = "adapted"\n')
    log = tmp_path / "new.csv"
    log.write_text("user,item\nu1,i1\n")
    assert main(["update", "--run", str(parent), "--interactions", str(log), "--out", str(tmp_path / "fresh")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "scene parts" in err[0] and "config.toml" in err[0], err
    assert not (tmp_path / "fresh").exists() and not list(tmp_path.glob(".fresh*"))


@pytest.mark.slow
def test_new_items_without_rdf_are_refused_strict_and_dropped_lenient(trained, stream_helper, tmp_path, capsys):
    out = tmp_path / "run2"
    args = ["update", "--run", str(trained["run"]), "--interactions", str(trained["new_log"]), "--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "item 'i18'" in err[0] and "--rdf" in err[0] and "--lenient" in err[0]
    assert not out.exists()

    assert main([*args, "--lenient"]) == 0
    capsys.readouterr()
    record = json.loads((out / "update.json").read_text())
    new = pd.read_csv(trained["new_log"])
    unknown = int(new["item"].isin(["i18", "i19", "i20"]).sum())
    assert record["report"]["counts"]["items"]["dropped: new item: new item without RDF"] == 3
    assert record["report"]["counts"]["interactions"]["dropped: new item refused (see items)"] == unknown
    assert record["added"]["items"] == 0 and record["added"]["interactions"] == len(new) - unknown


@pytest.mark.slow
def test_a_failure_half_way_leaves_the_parent_whole_and_no_out_and_it_can_run_again(trained, stream_helper, tmp_path, monkeypatch):
    before = stream_helper.files_of(trained["run"])
    out = tmp_path / "run2"

    def broken(*args, **kwargs):
        raise RuntimeError("the machine went away")

    monkeypatch.setattr(update_module, "fine_tune", broken)
    with pytest.raises(RuntimeError, match="went away"):
        update_run(trained["run"], trained["new_log"], out, rdf=[trained["new_rdf"]], log=_quiet)
    assert not out.exists()
    assert stream_helper.files_of(trained["run"]) == before
    monkeypatch.undo()
    update_run(trained["run"], trained["new_log"], out, rdf=[trained["new_rdf"]], log=_quiet)
    assert (out / "results.json").is_file()


@pytest.mark.slow
def test_an_update_killed_by_sigkill_leaves_the_parent_intact_and_no_out(trained, stream_helper, tmp_path):
    """A real process, killed with SIGKILL while it fine-tunes (a long update: 500 passes)."""
    before = stream_helper.files_of(trained["run"])
    long = tmp_path / "long.toml"
    long.write_text("[update]\nepochs = 500\nbatch_size = 16\n")
    out = tmp_path / "run2"
    cmd = [sys.executable, "-m", "kgrec", "update", "--run", str(trained["run"]), "--interactions", str(trained["new_log"]),
           "--rdf", str(trained["new_rdf"]), "--out", str(out), "--config", str(long), "--device", "cpu"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ | {"HF_HUB_OFFLINE": "1"})
    metrics = tmp_path / ".run2.new" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics.is_file() and len(metrics.read_text().splitlines()) >= 2:  # well into fine-tuning
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    assert stream_helper.files_of(trained["run"]) == before
    # the next attempt clears the killed one's staging folder and finishes
    update_run(trained["run"], trained["new_log"], out, rdf=[trained["new_rdf"]], log=_quiet)
    assert (out / "results.json").is_file() and not (tmp_path / ".run2.new").exists()
    assert Path(load_run(out, device="cpu").run_dir) == out


@pytest.mark.slow
def test_with_text_only_the_new_nodes_are_encoded_and_the_new_run_reloads_the_same(tmp_path, stream_helper, tiny_helper, monkeypatch):
    import kgrec.text.encoder
    import kgrec.text.features

    class _WordEncoder(tiny_helper.HashingEncoder):
        """The tests' stand-in text model, made like a TextEncoder; it records what it encodes."""

        dim = 16
        encoded: list[str] = []

        def __init__(self, *args, **kwargs):
            super().__init__()

        def encode(self, texts, progress=True):
            type(self).encoded += list(texts)
            return super().encode(texts, progress)

    monkeypatch.setattr(kgrec.text.features, "TextEncoder", _WordEncoder)
    monkeypatch.setattr(kgrec.text.encoder, "TextEncoder", _WordEncoder)
    w = stream_helper.world(tmp_path)
    config = stream_helper.config(item_item="ease")
    config.model.use_text = True
    train_run(w["graph"], config, tmp_path / "run", progress=False, log=_quiet)
    _WordEncoder.encoded = []
    results = update_run(tmp_path / "run", w["new_log"], tmp_path / "run2", rdf=[w["new_rdf"]], log=_quiet)
    parent_texts = set(_WordEncoder.encoded[: -3])
    assert _WordEncoder.encoded[-3:] == [f"Film {n}. A {['comedy', 'drama', 'horror'][n % 3]} film about number {n}." for n in (18, 19, 20)]
    assert all("18" not in t and "19" not in t and "20" not in t for t in parent_texts)  # the parent's texts, then the 3 new films'
    run = load_run(tmp_path / "run2", device="cpu")
    assert run.model.uses_text and run.evaluate("test")["ndcg@20"] == pytest.approx(results["test"]["ndcg@20"], abs=1e-6)


@pytest.mark.slow
def test_items_added_to_the_parent_stay_added_unless_the_update_made_them_trained_items(tmp_path, stream_helper):
    w = stream_helper.world(tmp_path)
    train_run(w["graph"], stream_helper.config(), tmp_path / "run", progress=False, log=_quiet)
    extra = stream_helper.write_catalogue(tmp_path / "extra.ttl", [18, 30])  # i18 gets clicks in the update, i30 never
    load_run(tmp_path / "run", device="cpu").add_items([extra], save=True)
    update_run(tmp_path / "run", w["new_log"], tmp_path / "run2", rdf=[w["new_rdf"]], log=_quiet)
    run = load_run(tmp_path / "run2", device="cpu")
    assert run.added_item_ids == ["i30"] and "i18" in run.kg.item_index
    assert json.loads((tmp_path / "run2" / "update.json").read_text())["carried_over"] == ["added_items"]
    assert "i30" in set(run.recommend(["u0"], k=run.catalogue_size)["item"])
