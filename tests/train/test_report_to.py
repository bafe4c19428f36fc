"""``report_to`` reaches the Trainer, and sparsity tracked at a checkpoint is logged as scalars through it
(to TensorBoard when it is installed, and to any other integration ``report_to`` names)."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import pytest
from train_helpers import tiny_dict
from transformers import TrainerCallback

from sparsinglaw.errors import ConfigError
from sparsinglaw.train.config import TrainConfig
from sparsinglaw.train.trainer import build_trainer, prepare, training_arguments


def test_report_to_is_passed_to_training_arguments(corpus, tmp_path):
    cfg = TrainConfig.from_dict(tiny_dict(corpus, tmp_path / "r", report_to="tensorboard, wandb"))
    assert training_arguments(cfg, 1, has_eval=False).report_to == ["tensorboard", "wandb"]
    plain = TrainConfig.from_dict(tiny_dict(corpus, tmp_path / "p"))
    assert plain.report_to == "none" and plain.report_targets() == []
    assert training_arguments(plain, 1, has_eval=False).report_to in ([], "none", ["none"])


def test_report_to_does_not_change_the_run_fingerprint(corpus, tmp_path):
    """Where the logs go is not what is trained: a run resumed with another logger is the same run."""
    one = TrainConfig.from_dict(tiny_dict(corpus, tmp_path / "r"))
    two = TrainConfig.from_dict(tiny_dict(corpus, tmp_path / "r", report_to="tensorboard"))
    assert one.fingerprint() == two.fingerprint()


def test_an_empty_report_to_is_refused(corpus, tmp_path):
    with pytest.raises(ConfigError, match="report_to"):
        TrainConfig.from_dict(tiny_dict(corpus, tmp_path / "r", report_to=" , "))


class LogCatcher(TrainerCallback):
    def __init__(self):
        self.logs: list[tuple[int, dict]] = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.logs.append((state.global_step, dict(logs or {})))


def _fake_tracking(run_dir: Path):
    """A hook that stores an activation ratio per checkpoint as tracking does (0.5 / step), without the
    minutes a real PPL-p% search takes; what is tested is where the stored value goes."""
    from sparsinglaw.store.database import ResultsStore

    def hook(path: Path, info: dict) -> None:
        ResultsStore(run_dir).record(info["run_id"], path.name, info["tokens_seen"], "pplp", setting={"p": 1.0},
                                     value=0.5 / info["step"], activation_ratio=0.5 / info["step"])

    return hook


def test_tracked_sparsity_is_logged_at_each_checkpoint(corpus, tmp_path, caplog):
    tensorboard = importlib.util.find_spec("tensorboard") is not None
    cfg = TrainConfig.from_dict(tiny_dict(corpus, tmp_path / "run", tensorboard=tensorboard, progress=True))
    prep = prepare(cfg)
    trainer = build_trainer(prep, hooks=[_fake_tracking(cfg.run_dir)])
    catcher = LogCatcher()
    trainer.add_callback(catcher)
    with caplog.at_level(logging.INFO, logger="sparsinglaw"):
        trainer.train()
    # stderr is no terminal under pytest: the token progress is logged, ending with the whole budget
    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("train: ")]
    assert progress and progress[-1].startswith("train: 100% (1.5k/1.5k tok)") and "loss=" in progress[-1]
    logged = {step: logs["sparsity/pplp"] for step, logs in catcher.logs if "sparsity/pplp" in logs}
    assert logged == {4: 0.125, 8: 0.0625, 12: 0.5 / 12}  # a checkpoint every 4 steps, each its own value
    assert any("loss" in logs for _, logs in catcher.logs)  # the losses still flow beside them
    if tensorboard:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        events = EventAccumulator(str(Path(cfg.run_dir) / "tensorboard")).Reload()
        scalars = [(e.step, round(e.value, 6)) for e in events.Scalars("train/sparsity/pplp")]
        assert scalars == [(4, 0.125), (8, 0.0625), (12, round(0.5 / 12, 6))]


def test_report_to_tensorboard_writes_to_the_run_folder_once(corpus, tmp_path):
    """report_to = "tensorboard" with our own logger off: one TensorBoard writer, in RUN_DIR/tensorboard
    (not the Trainer's dated folder), so a resumed run appends to the same place."""
    pytest.importorskip("tensorboard")
    from transformers.integrations import TensorBoardCallback

    cfg = TrainConfig.from_dict(tiny_dict(corpus, tmp_path / "run", tensorboard=False, report_to="tensorboard"))
    trainer = build_trainer(prepare(cfg))
    boards = [cb for cb in trainer.callback_handler.callbacks if isinstance(cb, TensorBoardCallback)]
    assert len(boards) == 1 and boards[0].tb_writer.log_dir == str(tmp_path / "run" / "tensorboard")
