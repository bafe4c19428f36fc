"""No dead ends in a study: after editing its config (the learning rate), the refusal advises --force, and
``study --force`` then continues it (the cells' run directories were refused before: --force stopped at
the study-level check and never reached them)."""

from __future__ import annotations

import shutil

from sparsinglaw.cli import main
from sparsinglaw.store.layout import STUDY_FILE
from sparsinglaw.store.runs import complete_checkpoints
from sparsinglaw.study import load_study


def test_an_edited_study_continues_with_force(mini_study, tmp_path, capfd):
    cfg, _ = mini_study
    copy = tmp_path / "study"
    shutil.copytree(cfg.out_dir, copy, ignore=shutil.ignore_patterns("report"))
    edited = load_study(copy / STUDY_FILE, [f"out_dir={copy}", "base.optim.lr=0.002"])
    config = tmp_path / "edited.toml"
    edited.save(config)
    capfd.readouterr()
    assert main(["study", str(config), "--no-report"]) == 2
    refusal = capfd.readouterr().err
    assert "--force" in refusal and "Traceback" not in refusal, refusal[-1500:]
    assert main(["study", str(config), "--no-report", "--force"]) == 0, capfd.readouterr().err[-3000:]
    for cell in edited.cells():
        assert complete_checkpoints(cell.run_dir)
        assert (cell.run_dir / f"run.{_old_fingerprint(cfg, cell.name)}.toml").is_file()  # the old config kept
    assert main(["study", str(config), "--no-report"]) == 0  # and a plain rerun now finds it finished
    assert "finished earlier, skipped" in capfd.readouterr().out


def _old_fingerprint(cfg, name: str) -> str:
    return next(cell for cell in cfg.cells() if cell.name == name).train_config().fingerprint()
