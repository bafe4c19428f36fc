"""Study config: validation naming the field, TOML/YAML round-trip, presets, the grid's cells."""

from __future__ import annotations

import pytest

from sparsinglaw.errors import ConfigError
from sparsinglaw.study import PRESETS, StudyConfig, load_study


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_round_trip_toml_and_yaml(name, tmp_path):
    cfg = load_study(name)
    for suffix in (".toml", ".yaml"):
        path = cfg.save(tmp_path / f"study{suffix}")
        assert load_study(path).to_dict() == cfg.to_dict()


def test_demo_grid_cells():
    cfg = load_study("demo")
    cells = cfg.cells()
    assert [c.activation for c in cells] == ["relu", "silu"]
    for cell in cells:  # the recipe that shows the laws: d = 64, L = 4, vocabulary 2048, 1M English tokens
        shape = cell.describe()
        assert (shape["hidden_size"], shape["num_layers"]) == (64, 4)
        train = cell.train_config()
        assert train.tokenizer.vocab_size == 2048 and train.token_budget >= 1_000_000
        assert train.data.source == "shakespeare" and train.model.mup and train.optim.lr == 5e-3  # the measured recipe
    assert cfg.track.mode == "cett-calibrated" and cfg.track.max_tokens >= 16_384


def test_trainer_evaluates_only_what_tracking_does_not_measure():
    cfg = load_study("demo")  # tracking measures the whole 16,384-token validation split at every checkpoint
    assert all(c.train_config().evaluate is False for c in cfg.cells())
    more = load_study("demo", ["base.data.validation_tokens=32768"])  # tracking covers only half of it
    assert all(c.train_config().evaluate is True for c in more.cells())
    asked = load_study("demo", ["base.evaluate=true"])  # a base that asks for it keeps it
    assert all(c.train_config().evaluate is True for c in asked.cells())
    # not part of the weights' fingerprint: a study directory trained before resumes unchanged
    a, b = cfg.cells()[0].train_config(), asked.cells()[0].train_config()
    assert a.fingerprint() == b.fingerprint()


def test_reproduce_grid_has_two_sizes_and_four_ratios():
    from sparsinglaw.study.config import estimate

    cfg = load_study("reproduce")
    cells = cfg.cells()
    for act in ("relu", "silu"):
        mine = [c for c in cells if c.activation == act]
        assert len({c.n_params for c in mine}) >= 2
        assert len({c.ratio for c in mine if c.n_params == 1.9e5}) >= 4
    assert estimate(cfg)["device"] == "cpu" and estimate(cfg)["train_hours"] < 1.5


def test_paper_preset_is_the_papers_shape_on_cuda():
    from sparsinglaw.study.config import estimate

    cfg = load_study("paper-0.1b", ["base.data.source='corpus.jsonl'"])
    shape = cfg.cells()[0].describe()
    assert (shape["hidden_size"], shape["num_layers"]) == (768, 16)
    train = cfg.cells()[0].train_config()
    assert train.dtype == "bfloat16" and train.seq_len == 4096 and train.model.mup
    est = estimate(cfg)
    assert est["device"] == "cuda" and est["cells"] == 2 and est["train_hours"] > 1 and est["shards"] is None
    h100, a100 = estimate(cfg, "h100"), estimate(cfg, "A100")
    assert a100["train_hours"] == pytest.approx(h100["train_hours"] * 989 / 312)
    with pytest.raises(ConfigError, match="--device 'tpu'"):
        estimate(cfg, "tpu")


@pytest.mark.parametrize("name", ["paper-0.1b", "gpu-small"])
def test_gpu_presets_take_the_corpus_from_the_user(name):
    cfg = load_study(name)
    with pytest.raises(ConfigError, match="^base.data.source is not set: the .* study trains on your corpus"):
        cfg.require_corpus()


def test_gpu_small_preset_is_minutes_on_an_h100():
    from sparsinglaw.study.config import estimate

    cfg = load_study("gpu-small", ["base.data.source='corpus.jsonl'"])
    described = [c.describe() for c in cfg.cells()]
    assert {c["activation"] for c in described} == {"relu", "silu"}
    params = [c["formula_params"] + 32000 * c["hidden_size"] for c in described]
    assert all(1e7 <= n <= 5e7 for n in params) and all(1e8 <= c["tokens"] <= 5e8 for c in described)
    assert 1 / 60 < estimate(cfg, "h100")["train_hours"] < 0.5


@pytest.mark.parametrize("override, field", [
    ("activations=['tanh']", "activations"),
    ("shapes=[]", "shapes"),
    ("token_budgets=[0]", "token_budgets"),
    ("launcher='slurm'", "launcher"),
    ("base.run_dir='x'", "base.run_dir"),
    ("base.seq_len=1", "seq_len"),
    ("track.p=0", "track"),
    ("track.mode='exact'", "track.mode"),
    ("bogus=1", "bogus"),
])
def test_bad_values_name_the_field(override, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load_study("mini", [override])


def test_file_overrides_and_preset(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('preset = "mini"\nactivations = ["relu"]\n[[shapes]]\nn_params = 3e4\nratio = 16\n'
                    '[[shapes]]\nn_params = 3e4\nratio = 8\nactivations = ["relu"]\n')
    cfg = load_study(path, ["token_budgets=[1024, 2048]"])
    assert isinstance(cfg, StudyConfig)
    assert [c.name for c in cfg.cells()] == ["relu-N30000-r16-D1024", "relu-N30000-r16-D2048",
                                             "relu-N30000-r8-D1024", "relu-N30000-r8-D2048"]
    assert cfg.cells()[0].train_config().token_budget == 1024


def test_a_shape_may_have_token_budgets_of_its_own(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('preset = "mini"\nactivations = ["relu"]\ntoken_budgets = [1024]\n[[shapes]]\nn_params = 3e4\n'
                    'ratio = 16\n[[shapes]]\nn_params = 3e4\nratio = 8\ntoken_budgets = [1024, 4096]\n')
    cfg = load_study(path)
    assert [c.name for c in cfg.cells()] == ["relu-N30000-r16-D1024", "relu-N30000-r8-D1024", "relu-N30000-r8-D4096"]
    assert load_study(cfg.save(tmp_path / "again.toml")).to_dict() == cfg.to_dict()
    with pytest.raises(ConfigError, match="token_budgets"):
        load_study("mini", ["shapes=[{n_params=3e4, ratio=16, token_budgets=[0]}]"])
