"""Config validation (errors name the field, before any work), TOML/YAML round-trip, overrides, presets."""

from __future__ import annotations

import pytest

from sparsinglaw.errors import ConfigError
from sparsinglaw.train.config import TrainConfig, load_config, paper_preset, parse_override, tiny_preset


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (["model.activation=swish"], "model.activation"),
        (["model.hidden_size=none", "model.num_layers=none", "model.n_params=1e5", "model.ratio=1000"], "model.ratio"),
        (["token_budget=100"], "token_budget"),
        (["checkpoint_every_tokens=10"], "checkpoint_every_tokens"),
        (["optim.lr=-1"], "optim.lr"),
        (["model.gated=false", "model.mup=true"], "model.mup"),
        (["model.num_heads=3"], "model.num_heads"),
        (["dtype=float8"], "dtype"),
        (["model.colour=blue"], "model.colour"),
        (["seq_len=abc"], "seq_len"),
    ],
)
def test_bad_values_name_the_field(overrides, field, tmp_path):
    run_dir = tmp_path / "never-created"
    with pytest.raises(ConfigError) as err:
        load_config("tiny", [f"run_dir={run_dir}", *overrides])
    message = str(err.value)
    assert field in message and "\n" not in message
    assert not run_dir.exists()


def test_zero_layers_message_explains():
    with pytest.raises(ConfigError, match=r"model.ratio=1000 gives zero layers"):
        load_config({"model": {"n_params": 1e5, "ratio": 1000}})


def test_budget_smaller_than_one_batch_mentions_batch():
    with pytest.raises(ConfigError, match=r"token_budget=1000 is smaller than one batch \(2048 tokens"):
        load_config("tiny", ["token_budget=1000", "seq_len=64", "batch_size=32"])


@pytest.mark.parametrize("suffix", [".toml", ".yaml"])
def test_round_trip(tmp_path, suffix):
    cfg = load_config("paper", ["model.activation=silu", "tokenizer.path=/some/tok", "data.max_documents=7"])
    path = cfg.save(tmp_path / f"run{suffix}")
    again = load_config(path)
    assert again == cfg
    assert again.to_dict() == cfg.to_dict()
    assert again.model.num_layers is None and again.tokenizer.path == "/some/tok"


def test_file_preset_then_file_values_then_overrides(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('preset = "tiny"\nseq_len = 32\n[model]\nactivation = "silu"\n')
    cfg = load_config(path, ["model.activation=gelu", "token_budget=1e4", "tensorboard=false"])
    assert cfg.model.hidden_size == tiny_preset().model.hidden_size  # from the preset
    assert cfg.seq_len == 32 and cfg.model.activation == "gelu"
    assert cfg.token_budget == 10_000 and isinstance(cfg.token_budget, int)
    assert cfg.tensorboard is False


def test_parse_override_types():
    assert parse_override("a.b=3") == (["a", "b"], 3)
    assert parse_override("a=0.5") == (["a"], 0.5)
    assert parse_override("a=true") == (["a"], True)
    assert parse_override("a=silu") == (["a"], "silu")
    assert parse_override("a=none") == (["a"], None)
    with pytest.raises(ConfigError, match="key.sub=value"):
        parse_override("novalue")


def test_invalid_file_is_one_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("seq_len = = 3\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_fingerprint_ignores_bookkeeping_only():
    a = tiny_preset()
    b = TrainConfig.from_dict({**a.to_dict(), "run_dir": "elsewhere", "progress": False, "log_every_steps": 99})
    c = TrainConfig.from_dict({**a.to_dict(), "seed": 1})
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_fingerprint_sees_paths_not_their_spelling(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "tok").mkdir(parents=True)
    (tmp_path / "corpus.jsonl").write_text('{"text": "x"}\n')
    base = tiny_preset().to_dict()
    relative = TrainConfig.from_dict({**base, "tokenizer": {**base["tokenizer"], "path": "runs/tok"},
                                      "data": {**base["data"], "source": "corpus.jsonl"}})
    absolute = TrainConfig.from_dict({**base, "tokenizer": {**base["tokenizer"], "path": str(tmp_path / "runs/tok")},
                                      "data": {**base["data"], "source": str(tmp_path / "corpus.jsonl")}})
    assert relative.fingerprint() == absolute.fingerprint()
    assert relative.fingerprint(absolute_paths=False) != absolute.fingerprint(absolute_paths=False)
    other = TrainConfig.from_dict({**base, "tokenizer": {**base["tokenizer"], "path": "runs/other"}})
    assert other.fingerprint() != relative.fingerprint()
    # A name that is not a local path (a datasets hub name) stays as written.
    hub = TrainConfig.from_dict({**base, "data": {**base["data"], "source": "wikitext"}})
    assert hub.result_dict()["data"]["source"] == "wikitext"


def test_paper_preset_is_the_paper_recipe():
    cfg = paper_preset()
    assert (cfg.optim.lr, cfg.optim.beta1, cfg.optim.beta2, cfg.optim.weight_decay) == (0.01, 0.9, 0.95, 0.1)
    assert cfg.model.mup and cfg.model.tie_embeddings and cfg.model.ffn_mult == 2.5 and cfg.seq_len == 4096
