"""Helpers for the training tests (a module, not conftest, so tests can import them by name)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from helpers import subprocess_env  # noqa: F401  (re-exported for the tests here)

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable

# 12 optimizer steps of 4 x 32 tokens, a checkpoint every 4 steps.
TINY_OVERRIDES = {
    "seq_len": 32, "batch_size": 4, "token_budget": 1536, "checkpoint_every_tokens": 512, "log_every_steps": 2,
    "progress": False, "tensorboard": False,
    "model": {"activation": "relu", "hidden_size": 32, "num_layers": 2, "head_dim": 16},
    "tokenizer": {"vocab_size": 300},
    "data": {"validation_fraction": 0.2, "validation_tokens": 256},
    "optim": {"lr": 0.003, "warmup_fraction": 0.25, "decay_fraction": 0.25},
}


def tiny_dict(corpus: Path, run_dir: Path, **changes) -> dict:
    data = json.loads(json.dumps(TINY_OVERRIDES))
    data["run_dir"] = str(run_dir)
    data["data"]["source"] = str(corpus)
    for key, value in changes.items():
        section, _, name = key.partition("__")
        if name:
            data[section][name] = value
        else:
            data[key] = value
    return data


def write_config(corpus: Path, run_dir: Path, path: Path, **changes) -> Path:
    from sparsinglaw.train.config import TrainConfig

    TrainConfig.from_dict(tiny_dict(corpus, run_dir, **changes)).save(path)
    return path




KILL_SCRIPT = """
import sys, time, torch
torch.set_num_threads(1)
from sparsinglaw.train import load_config, train
# Pausing after each checkpoint leaves the test time to kill the run between two checkpoints.
train(load_config(sys.argv[1]), hooks=[lambda path, info: time.sleep(0.5)])
"""


def kill_after_checkpoint(config: Path, run_dir: Path, step: int, steps: int) -> list[int]:
    """Train ``config`` in a subprocess, SIGKILL it once checkpoint ``step`` is complete, and return the
    steps of the complete checkpoints it left (asserting the run was interrupted before ``steps``)."""
    import signal
    import subprocess
    import time

    from sparsinglaw.store.runs import MARKER, complete_checkpoints

    proc = subprocess.Popen([PYTHON, "-c", KILL_SCRIPT, str(config)], cwd=REPO, env=subprocess_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / f"checkpoint-{step}" / MARKER).exists():
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "no checkpoint within 2 minutes"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    done = [c["step"] for c in complete_checkpoints(run_dir)]
    assert done and done[-1] < steps, f"the run was not interrupted ({done})"
    return done


def run_side_by_side(worker: str, run_dir: Path, tmp_path: Path, processes: int = 2) -> list[dict]:
    """Start ``processes`` copies of ``worker`` (a script taking RUN_DIR and a go-file path that touches
    GO.PID when ready and waits for GO), release them together, and return each one's last stdout line as
    JSON (asserting every one exited 0)."""
    import subprocess
    import time

    go = tmp_path / "go"
    procs = [subprocess.Popen([PYTHON, "-c", worker, str(run_dir), str(go)], cwd=REPO, env=subprocess_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(processes)]
    deadline = time.time() + 120
    while len(list(tmp_path.glob("go.*"))) < processes and time.time() < deadline:
        time.sleep(0.05)
    go.touch()
    outs = [proc.communicate(timeout=300) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), [err[-800:] for _, err in outs]
    return [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
