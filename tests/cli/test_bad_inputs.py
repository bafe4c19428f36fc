"""Every bad input a user can give, through the real CLI: exit code 2, one ``error:`` line on stderr, no
traceback, and nothing written before (results, run stores, directories) changed.

Each case is (command line, a phrase the error must contain). Placeholders in capitals are replaced by paths
of the ``world`` fixture: a tiny saved model, thresholds files good and broken, an existing result file, a
directory with a file in it, a run directory with a results store, and places that cannot be written.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path

import pytest

from helpers import text_tokenizer, tiny_llama
from sparsinglaw.cli import main
from sparsinglaw.store.database import ResultsStore

UNWRITABLE = "/proc/sparsinglaw-no-such-place"  # not writable even by root

CASES = [
    # 1. output paths, checked before any work
    ("measure --model MODEL --output ADIR", "is a directory"),
    ("measure --model MODEL --output ADIR/", "is a directory"),
    (f"measure --model MODEL --output {UNWRITABLE}/r.json", "cannot be written"),
    ("measure --model MODEL --output AFILE/r.json", "is a file, not a directory"),
    ("measure --model MODEL --heatmap ADIR", "--heatmap"),
    (f"measure --model MODEL --frequency-plot {UNWRITABLE}/f.png", "--frequency-plot"),
    ("pareto --model MODEL --output ADIR", "is a directory"),
    (f"pareto --model MODEL --output NEW.json --plot {UNWRITABLE}/p.png", "--plot"),
    ("train tiny run_dir=AFILE", "is a file; give a directory"),
    (f"train tiny run_dir={UNWRITABLE}/run", "cannot be written"),
    ("track RUN --output ADIR", "--output"),
    (f"track RUN --output {UNWRITABLE}/t.csv", "cannot be written"),
    ("report RUN --output AFILE", "is a file; give a directory"),
    (f"report RUN --out {UNWRITABLE}/report", "--output /proc"),  # the old spelling, answered as the new
    ("export --model MODEL --thresholds GOOD --output AFILE", "is a file; give a directory"),
    (f"export --model MODEL --thresholds GOOD --output {UNWRITABLE}/x", "cannot be written"),
    ("eval --model MODEL --thresholds GOOD --tasks t --output ADIR", "is a directory"),
    ("speed --model MODEL --thresholds GOOD --output ADIR", "is a directory"),
    # 2. impossible values refused on load
    ("export --model MODEL --thresholds NAN --output NEW", "must be finite and >= 0"),
    ("export --model MODEL --thresholds INF --output NEW", "must be finite and >= 0"),
    ("export --model MODEL --thresholds NEGATIVE --output NEW", "must be finite and >= 0"),
    ("export --model MODEL --thresholds TEXT --output NEW", "no numeric threshold"),
    ("export --model MODEL --thresholds NOLAYERS --output NEW", "no per-layer thresholds"),
    ("export --model MODEL --thresholds LIST --output NEW", "neither a thresholds file"),
    ("eval --model MODEL --thresholds NAN --tasks t", "must be finite and >= 0"),
    ("speed --model MODEL --thresholds NEGATIVE", "must be finite and >= 0"),
    ("measure --model MODEL --seq-len 1024 --max-tokens 2048", "beyond the model's 256 positions"),
    ("measure --model BADHEADS", "is invalid"),
    ("measure --model BADTYPE", "expected int"),
    ("measure --model HUGE", "GiB of memory is available"),
    # 7. the hub, offline
    ("eval --model MODEL --thresholds GOOD --tasks sl_hub_task --include-path HUBTASK --limit 2",
     "cannot be reached"),
    # earlier cases of the same kind
    ("measure --model /nope/model", "does not exist"),
    ("measure --model MODEL --p 0", "p=0"),
    ("measure --model MODEL --data /nope.txt", "does not exist"),
    ("measure --model MODEL --threads 0", "--threads"),
    ("export --model MODEL --thresholds GOOD --output NEW --threads 0", "--threads"),
    ("speed --model MODEL --thresholds GOOD --threads -1", "--threads"),
    ("track MISSINGRUN", "not a sparsinglaw training run"),
    ("export --model MODEL --thresholds /nope.json --output NEW", "does not exist"),
    ("export --model MODEL --thresholds WRONGWIDTHS --output NEW", "measure thresholds on this model"),
    ("export --model MODEL --thresholds GOOD --output ADIR", "not empty"),
    ("speed --model MODEL", "--thresholds"),
    # 5. inputs of every shape (issue 31): encodings, over-long names, a model too big to train
    ("measure --model MODEL --data LATIN1JSONL", "latin1.jsonl:2 is not UTF-8"),
    ("measure --model MODEL --output LONGNAME/r.json", "over the file system's 255-byte limit"),
    ("measure --model MODEL --output NEARLONG", "over the file system's 241-byte limit"),  # no room for the temp name
    ("train tiny run_dir=LONGNAME", "over the file system's 255-byte limit"),
    ("export --model MODEL --thresholds GOOD --output LONGNAME", "over the file system's 255-byte limit"),
    ("train tiny model.hidden_size=8192 model.num_layers=64 run_dir=NEW", "training needs at least"),
    # 7. one overwrite rule: an existing result is refused unless --overwrite (export: a non-empty directory)
    ("measure --model MODEL --output PREV", "exists; pass --overwrite"),
    ("measure --model MODEL --output NEW.json --heatmap PREV", "--heatmap"),
    ("pareto --model MODEL --output PREV", "exists; pass --overwrite"),
    ("inputs --model MODEL --thresholds-output PREV", "--thresholds-output"),
    ("speed --model MODEL --thresholds GOOD --output PREV", "exists; pass --overwrite"),
    ("track RUN --output PREV", "exists; pass --overwrite"),
    ("fit RUN --output PREV", "exists; pass --overwrite"),
    ("widthdepth /nope.csv --output PREV", "exists; pass --overwrite"),
    ("eval --model MODEL --thresholds GOOD --tasks t --output PREV", "exists; pass --overwrite"),
]

# Unusual inputs that run (exit 0) but must say what they did not do: (command line, a phrase of the warning).
# The wrong --hidden-act on the real SmolLM2 is tests/test_activation_probe.py (it loads a real model).
FEW = "--max-tokens 64 --seq-len 32 --batch-size 2"
WARNED = [
    (f"measure --model MODEL --metric cett --data TEXTFILE --text-field body {FEW}", "--text-field body is ignored"),
    (f"measure --model MODEL --metric cett --text-field body {FEW}", "the built-in corpus has no fields"),
    ("speed --model SILUMODEL --thresholds ZEROS --new-tokens 4 --repeats 1 --prompt-len 8 --batch-sizes 1",
     "batch 1: nothing ran sparsely"),
]


def _thresholds(values, width: int = 160) -> dict:
    return {"format": "sparsinglaw.thresholds", "version": 1, "model": {"name": "tiny"},
            "layers": [{"name": f"model.layers.{i}.mlp", "block": i, "expert": None, "width": width, "threshold": v}
                       for i, v in enumerate(values)]}


def _config_variant(model: Path, where: Path, **changes) -> Path:
    where.mkdir()
    config = json.loads((model / "config.json").read_text())
    config.update(changes)
    (where / "config.json").write_text(json.dumps(config))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        if (model / name).exists():
            (where / name).write_bytes((model / name).read_bytes())
    return where


def _hub_task(where: Path) -> Path:
    where.mkdir()
    (where / "sl_hub_task.yaml").write_text(
        "task: sl_hub_task\ndataset_path: sparsinglaw-nobody/no-such-dataset\ntest_split: test\n"
        "output_type: multiple_choice\ndoc_to_text: \"{{q}}\"\ndoc_to_choice: \"{{c}}\"\ndoc_to_target: 0\n"
        "metric_list:\n  - metric: acc\n", encoding="utf-8")
    return where


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad_inputs")
    model = root / "model"  # untrained: every case is refused before it would matter
    tokenizer = text_tokenizer()
    tiny_llama("relu", vocab=len(tokenizer)).save_pretrained(model)
    tokenizer.save_pretrained(model)
    paths = {"MODEL": model, "NEW": root / "new-out", "MISSINGRUN": root / "no-run", "RUN": root / "run"}
    for name, values in (("GOOD", [0.01, 0.02]), ("NAN", [0.01, math.nan]), ("INF", [math.inf, 0.01]),
                         ("NEGATIVE", [0.01, -0.5]), ("TEXT", [0.01, "0.02"])):
        paths[name] = root / f"{name.lower()}.json"
        paths[name].write_text(json.dumps(_thresholds(values), allow_nan=True))
    paths["NOLAYERS"] = root / "nolayers.json"
    paths["NOLAYERS"].write_text(json.dumps({**_thresholds([]), "layers": []}))
    paths["LIST"] = root / "list.json"
    paths["LIST"].write_text("[0.1, 0.2]")
    paths["WRONGWIDTHS"] = root / "widths.json"
    paths["WRONGWIDTHS"].write_text(json.dumps(_thresholds([0.1, 0.1, 0.1], width=99)))
    paths["PREV"] = root / "prev.json"
    paths["PREV"].write_text('{"an": "earlier result"}\n')
    paths["ADIR"] = root / "adir"
    paths["ADIR"].mkdir()
    (paths["ADIR"] / "keep.txt").write_text("earlier output\n")
    paths["AFILE"] = root / "afile"
    paths["AFILE"].write_text("earlier file\n")
    ResultsStore(paths["RUN"]).record("run", "checkpoint-1", 10, "pplp", setting={"p": 1.0}, value=0.5,
                                      activation_ratio=0.5)
    paths["BADHEADS"] = _config_variant(model, root / "badheads", hidden_size=65)
    paths["BADTYPE"] = _config_variant(model, root / "badtype", num_hidden_layers="x")
    paths["HUGE"] = _config_variant(model, root / "huge", hidden_size=16384, intermediate_size=65536,
                                    num_hidden_layers=400, num_attention_heads=128, num_key_value_heads=8)
    paths["HUBTASK"] = _hub_task(root / "hub_tasks")
    paths["LATIN1JSONL"] = root / "latin1.jsonl"
    paths["LATIN1JSONL"].write_bytes('{"text": "plain"}\n{"text": "café crème"}\n'.encode("latin-1"))
    paths["LONGNAME"] = root / ("n" * 300)  # over NAME_MAX (255 bytes on the usual file systems)
    paths["NEARLONG"] = root / ("m" * 245 + ".json")  # under NAME_MAX, but the atomic writer's temp name is not
    paths["TEXTFILE"] = root / "docs.txt"
    paths["TEXTFILE"].write_text("A first document of plain text.\n\nA second one, after a blank line.\n" * 20)
    paths["SILUMODEL"] = root / "silu"
    tiny_llama("silu", vocab=len(tokenizer)).save_pretrained(paths["SILUMODEL"])
    tokenizer.save_pretrained(paths["SILUMODEL"])
    paths["ZEROS"] = root / "zeros.json"  # keeps every neuron of a SiLU model: every FFN call falls back to dense
    paths["ZEROS"].write_text(json.dumps(_thresholds([0.0, 0.0])))
    return paths


def _snapshot(root: Path) -> dict[str, str]:
    """Hash of every file under ``root`` except the model and the store's WAL side files."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.name.endswith(("-wal", "-shm")):
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _error_lines(err: str) -> list[str]:
    """stderr lines a user reads: progress bars (carriage-return redraws) dropped."""
    lines = err.replace("\r", "\n").splitlines()
    return [line for line in lines if line.strip() and "it/s]" not in line and "%|" not in line]


def _expand(command: str, world: dict[str, Path]) -> list[str]:
    """The command line with its placeholders (whole capitalized words) replaced by the world's paths."""
    names = "|".join(sorted(world, key=len, reverse=True))
    return re.sub(rf"\b({names})\b", lambda m: str(world[m.group(1)]), command).split()


@pytest.mark.parametrize("command,phrase", CASES, ids=[c[0].split(" --")[0] + ": " + c[1] for c in CASES])
def test_bad_input_is_refused_with_one_line(world, command, phrase, capfd, monkeypatch, tmp_path):
    if command.startswith("eval"):
        pytest.importorskip("lm_eval")
    monkeypatch.chdir(tmp_path)  # outside any git checkout: no stray git messages either
    argv = _expand(command, world)
    before = _snapshot(world["MODEL"].parent)
    rows_before = ResultsStore(world["RUN"]).measurements()
    code = main(argv)
    err = capfd.readouterr().err
    lines = _error_lines(err)
    assert code == 2, err[-2000:]
    assert "Traceback" not in err and "fatal:" not in err
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert phrase in lines[0], lines[0]
    assert _snapshot(world["MODEL"].parent) == before  # nothing written before was touched
    assert ResultsStore(world["RUN"]).measurements() == rows_before
    assert not world["NEW"].exists()


@pytest.mark.parametrize("command,phrase", WARNED, ids=[c[0].split(" --")[0] + ": " + c[1] for c in WARNED])
def test_unusual_input_runs_and_says_what_it_ignored(world, command, phrase, capfd, caplog, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    before = _snapshot(world["MODEL"].parent)
    with caplog.at_level("WARNING", logger="sparsinglaw"):
        code = main(_expand(command, world))
    err = capfd.readouterr().err
    assert code == 0 and "Traceback" not in err, err[-2000:]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(phrase in w for w in warnings), warnings
    assert _snapshot(world["MODEL"].parent) == before


def test_the_overwrite_advice_works(world, tmp_path, capfd, monkeypatch):
    """The refusal says to pass --overwrite; with it the earlier result is replaced by the new one."""
    monkeypatch.chdir(tmp_path)
    earlier = tmp_path / "r.json"
    earlier.write_text('{"an": "earlier result"}\n')
    argv = ["measure", "--model", str(world["MODEL"]), "--metric", "cett", *FEW.split(), "--output", str(earlier)]
    assert main(argv) == 2 and "pass --overwrite" in capfd.readouterr().err
    assert main([*argv, "--overwrite"]) == 0, capfd.readouterr().err[-2000:]
    assert json.loads(earlier.read_text())["metric"] == "cett"
