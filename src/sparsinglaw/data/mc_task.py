"""A small local multiple-choice task for lm-eval, shipped with the package so ``sparsinglaw eval`` runs offline.

``sparsinglaw_mc`` (100 items): continue a passage of the built-in corpus with its real next four words
among three spans from elsewhere (chance 0.25; ``acc`` and ``acc_norm``). It measures whether sparsifying
changes what the model predicts on real text, nothing more::

    sparsinglaw eval --model M --thresholds result.json --tasks sparsinglaw_mc

``local_task_dir`` writes its YAML under the cache directory; ``write_mc_task`` builds one of any size."""

from __future__ import annotations

import json
import random
from importlib import resources
from pathlib import Path

from sparsinglaw.data.corpus import builtin_documents
from sparsinglaw.fileio import atomic_write_text, cache_root

SHIPPED_TASK = "sparsinglaw_mc"

# lm-eval task config: the context, then " " and one of the four choices; acc and acc_norm (length-normalised).
TASK_YAML = """task: {task}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{context}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{label}}}}"
target_delimiter: " "
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
"""


def mc_records(n: int, seed: int) -> list[dict]:
    """``n`` items from documents 40-60 of the built-in corpus: 12 words of context, the real next 4 words at
    position ``i % 4`` among 3 spans drawn at random."""
    rng = random.Random(seed)
    words = " ".join(builtin_documents()[40:60]).split()
    records = []
    for i in range(n):
        start = rng.randrange(0, len(words) - 40)
        choices = [" ".join(words[s : s + 4]) for s in (rng.randrange(0, len(words) - 4) for _ in range(3))]
        label = i % 4
        choices.insert(label, " ".join(words[start + 12 : start + 16]))
        records.append({"context": " ".join(words[start : start + 12]), "choices": choices, "label": label})
    return records


def write_task_yaml(directory: str | Path, task: str, data: str | Path) -> Path:
    """``directory/<task>.yaml`` reading the JSONL file ``data``; returns the directory."""
    directory = Path(directory)
    atomic_write_text(directory / f"{task}.yaml", TASK_YAML.format(task=task, data=json.dumps(str(data))))
    return directory


def write_mc_task(directory: str | Path, n: int = 12, seed: int = 0, task: str = "sl_local_mc") -> Path:
    """A task of ``n`` items as YAML plus JSONL in ``directory`` (pass it to ``eval --include-path``)."""
    directory = Path(directory)
    data = directory / f"{task}.jsonl"
    atomic_write_text(data, "".join(json.dumps(r) + "\n" for r in mc_records(n, seed)))
    return write_task_yaml(directory, task, data)


def shipped_data() -> Path:
    """The shipped task's JSONL (100 items, ``mc_records(100, seed=1)``, the items of the README's table)."""
    return Path(str(resources.files("sparsinglaw.data") / "texts" / f"{SHIPPED_TASK}.jsonl"))


def local_task_dir() -> Path:
    """A directory holding the shipped task's YAML, for lm-eval's ``include_path``."""
    return write_task_yaml(cache_root() / "lm_eval_tasks", SHIPPED_TASK, shipped_data())
