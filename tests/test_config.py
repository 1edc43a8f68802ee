import pytest

from kgrec.config import ExperimentConfig, dump_toml, load_graph_spec
from kgrec.experiment import load_experiment
from kgrec.errors import KgrecError


def test_defaults_round_trip(tmp_path):
    cfg = ExperimentConfig()
    cfg.model.layers = 4
    cfg.train.target_events = ["buy"]
    dump_toml(cfg, tmp_path / "c.toml")
    assert load_experiment(tmp_path / "c.toml") == cfg


def test_unknown_key_names_file_and_key(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[train]\nlearning_rate = 0.1\n")
    with pytest.raises(KgrecError, match=r"c\.toml.*train\.learning_rate"):
        load_experiment(p)


def test_wrong_type(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[model]\nlayers = 'three'\n")
    with pytest.raises(KgrecError, match="model.layers must be an integer"):
        load_experiment(p)


def test_invalid_toml(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[model\n")
    with pytest.raises(KgrecError, match="invalid TOML"):
        load_experiment(p)


def test_spec_paths_resolve_against_spec_folder(tmp_path):
    (tmp_path / "graphs").mkdir()
    p = tmp_path / "graphs" / "x.toml"
    p.write_text('[interactions]\npath = "../data/log.csv"\nrating_threshold = 4\n[rdf]\npaths = ["../data/kg.ttl"]\n')
    spec = load_graph_spec(p)
    assert spec.name == "x"
    assert spec.resolve(spec.interactions.path) == tmp_path / "graphs" / "../data/log.csv"
    assert spec.interactions.rating_threshold == 4.0
