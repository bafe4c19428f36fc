"""Every settings class of the package is a Config: one override syntax for train, study and track, one
tracking-settings type, files that round-trip any run name, and one-line CLI errors."""

from __future__ import annotations

import pytest
from test_config_base import AWKWARD

from sparsinglaw.config import Config
from sparsinglaw.errors import ConfigError
from sparsinglaw.inputs.measure import InputConfig
from sparsinglaw.measure import MeasureConfig
from sparsinglaw.study.config import FitSpec, ShapeSpec, StudyConfig, load_study
from sparsinglaw.study.config import TrackSettings as TrackSettingsOfStudy
from sparsinglaw.track.tracker import TrackSettings as TrackSettingsOfTrack
from sparsinglaw.train.config import (
    DataConfig,
    ModelConfig,
    OptimConfig,
    TokenizerConfig,
    TrackSettings,
    TrainConfig,
    load_config,
)

STUDY_NAME = AWKWARD.replace("/", "")  # a study name is a plain name (no "/")


@pytest.mark.parametrize("cls", [ModelConfig, TokenizerConfig, DataConfig, OptimConfig, TrainConfig, TrackSettings,
                                 ShapeSpec, FitSpec, StudyConfig, MeasureConfig, InputConfig])
def test_every_settings_class_is_a_config(cls):
    assert issubclass(cls, Config)


def test_one_tracking_settings_type_with_one_set_of_defaults():
    assert TrackSettingsOfStudy is TrackSettings is TrackSettingsOfTrack
    study = StudyConfig(shapes=[ShapeSpec(3e4, 16)], base={"model": {"head_dim": 16}})
    train = load_config("tiny", ["track.mode=pplp"])
    assert type(study.track) is type(train.track) is TrackSettings
    defaults = TrackSettings()
    assert (defaults.max_tokens, defaults.batch_size, defaults.mode) == (16_384, 8, "cett-calibrated")
    assert train.track.max_tokens == study.track.max_tokens == 16_384


def test_one_override_syntax_for_train_and_study():
    train = load_config("tiny", ["optim.lr=0.002", "track.mode=pplp", "track.max_tokens=256"])
    study = load_study("mini", ["track.max_tokens=512", "base.optim.lr=0.002", "fit.n_boot=30"])
    assert train.optim.lr == study.cells()[0].train_config().optim.lr == 0.002
    assert (train.track.max_tokens, study.track.max_tokens, study.fit.n_boot) == (256, 512, 30)


@pytest.mark.parametrize(("load", "override", "message"), [
    (load_config, "optim.lr=abc", "optim.lr: expected float, got 'abc'"),
    (load_config, "track.batch_size=many", "track.batch_size: expected int, got 'many'"),
    (load_study, "track.p=abc", "track.p: expected float, got 'abc'"),
    (load_study, "fit.level=high", "fit.level: expected float, got 'high'"),
    (load_study, "shapes=[{n_params = 3e4, ratio = 'wide'}]", "shapes[0].ratio: expected float, got 'wide'"),
    (load_study, "base.optim.lr=abc", "optim.lr: expected float, got 'abc'"),
])
def test_wrong_types_name_the_dotted_field(load, override, message):
    with pytest.raises(ConfigError) as err:
        load("tiny" if load is load_config else "mini", [override])
    assert message in str(err.value)


def test_training_tracks_ppl_p_per_checkpoint_only():
    with pytest.raises(ConfigError, match=r"track\.mode='cett-calibrated'.*set track\.mode=pplp"):
        load_config("tiny", ["track.p=1.0"])
    with pytest.raises(ConfigError, match=r"track\.max_tokens=32 must be >= seq_len \(64\)"):
        load_config("tiny", ["track.mode=pplp", "track.max_tokens=32"])


def test_run_files_of_older_versions_still_load(tmp_path):
    """Run directories keep the ``track = true``/``track_p``/``track_max_tokens`` spelling of their config."""
    path = tmp_path / "run.toml"
    path.write_text(load_config("tiny").to_toml().replace("[model]", "track = true\ntrack_p = 0.5\n"
                                                         "track_max_tokens = 4096\n\n[model]"), encoding="utf-8")
    cfg = load_config(path)
    assert cfg.track == TrackSettings(p=0.5, mode="pplp", max_tokens=4096)
    assert cfg.fingerprint() == load_config("tiny").fingerprint()  # tracking never changes what is trained
    assert load_config({"preset": "tiny", "track": False}).track is None


@pytest.mark.parametrize("suffix", [".toml", ".yaml"])
def test_a_study_named_with_any_unicode_round_trips_and_resumes(tmp_path, suffix):
    from sparsinglaw.study.runner import STUDY_FILE, guard_study_dir

    cfg = load_study("mini", [f"out_dir={tmp_path / 'study'}"])
    cfg.name = STUDY_NAME
    cfg.validate()
    again = load_study(cfg.to_file(tmp_path / f"study{suffix}"))
    assert again.name == STUDY_NAME and again.to_dict() == cfg.to_dict()
    guard_study_dir(cfg)  # writes OUT_DIR/study.toml
    guard_study_dir(load_study(tmp_path / "study" / STUDY_FILE))  # resuming: the same config, no error
    with pytest.raises(ConfigError, match="different config"):
        changed = load_study(tmp_path / "study" / STUDY_FILE, ["fit.n_boot=50"])
        guard_study_dir(changed)


def test_measure_and_input_configs_build_from_dicts_and_files(tmp_path):
    assert MeasureConfig.from_dict({"metric": "topk", "ratio": 0.2}).ratio == 0.2
    with pytest.raises(ConfigError, match=r"^p: expected float, got 'x'$"):
        MeasureConfig.from_dict({"p": "x"})
    with pytest.raises(ConfigError, match="unknown setting colour"):
        MeasureConfig.from_dict({"colour": 1})
    fixed = InputConfig(p=None, methods=("cett",))
    for suffix in (".toml", ".yaml"):
        assert InputConfig.from_file(fixed.to_file(tmp_path / f"inputs{suffix}")) == fixed  # None survives TOML


def test_cli_prints_a_bad_override_as_one_line(capsys):
    from sparsinglaw import cli

    assert cli.main(["train", "tiny", "--dry-run", "optim.lr=abc"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: optim.lr: expected float, got 'abc'"
