"""Every command block of README.md and of docs/scale.md (which it links) works as written: each
``sparsinglaw`` command parses (the train and study ones run with --dry-run, which validates their
overrides), the modules torchrun is pointed at import, ``./dev`` knows its subcommands; the words of the
glossary are defined before their first use; the slow test runs the measure, eval, export and Python
examples for real on SmolLM2 (few tokens, the shipped task)."""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest

from helpers import smollm2_gguf_path
from sparsinglaw.cli import build_parser, main

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
SCALE = (REPO / "docs" / "scale.md").read_text(encoding="utf-8")  # the README's training-at-scale commands


def readme_commands() -> list[str]:
    """Each command of the README's ```bash blocks, comments dropped, continued lines joined, ``a && b``
    split."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README + SCALE, flags=re.S):
        block = re.sub(r"\\\n\s*", " ", block)  # a line ending in a backslash goes on on the next
        for line in block.splitlines():
            line = re.sub(r"(^|\s+)#.*$", "", line).strip()
            commands += [part.strip() for part in line.split("&&") if part.strip()]
    return commands


COMMANDS = readme_commands()
SPARSINGLAW = [c for c in COMMANDS if c.startswith("sparsinglaw ")]


def test_the_readme_has_the_commands_it_shows():
    assert len(SPARSINGLAW) >= 9 and any(" eval " in c for c in SPARSINGLAW)
    assert all(c.split()[0] in ("sparsinglaw", "./dev", "pip", "torchrun") for c in COMMANDS), COMMANDS


@pytest.mark.parametrize("command", SPARSINGLAW)
def test_each_sparsinglaw_command_parses(command, tmp_path, monkeypatch, capsys):
    argv = shlex.split(command)[1:]
    if argv[0] in ("train", "study"):  # cheap and validating: the resolved config, the plan and its estimate
        monkeypatch.chdir(tmp_path)
        assert main([*argv, "--dry-run"]) == 0
        assert "about" in capsys.readouterr().out  # the time estimate
    elif argv == ["--version"]:
        with pytest.raises(SystemExit) as done:
            main(argv)
        assert done.value.code == 0
    else:
        args = build_parser(argv[0]).parse_args(argv)
        assert args.command == argv[0]


def test_torchrun_modules_and_dev_subcommands_exist():
    for command in COMMANDS:
        words = command.split()
        if words[0] == "torchrun":
            module = words[words.index("-m") + 1]
            assert importlib.util.find_spec(module) is not None, module
        elif words[0] == "./dev":
            assert re.search(rf"^\s*{words[1]}\)", (REPO / "dev").read_text(), flags=re.M), words[1]
        elif words[0] == "pip" and "-e" in words:
            assert "[project.optional-dependencies]" in (REPO / "pyproject.toml").read_text()


@pytest.mark.parametrize("term", ["CETT", "PPL-p%", "TEAL", "activation ratio"])
def test_words_are_defined_before_use(term):
    definition = README.index(f"- **{term}" if term != "TEAL" else "- **ours / TEAL / combined**")
    assert README.index(term) >= definition, f"{term} is used before the glossary defines it"
    help_text = build_parser(every=False).format_help()
    assert term in help_text.split("words:")[1]


@pytest.mark.slow
def test_readme_measure_eval_export_and_python_run_on_smollm2(tmp_path, monkeypatch):
    gguf = smollm2_gguf_path()
    if gguf is None:
        pytest.skip("SmolLM2 GGUF not found")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPARSINGLAW_CACHE", str(tmp_path / "cache"))
    (tmp_path / "my.txt").write_text("\n\n".join(__import__("sparsinglaw").data.builtin_documents()[:30]))
    few = ["--seq-len", "64", "--max-tokens", "256"]
    for command in [c for c in SPARSINGLAW if c.split()[1] in ("measure", "eval", "export")]:
        argv = [str(gguf) if a in ("M", "path/to/model-or.gguf") else a for a in shlex.split(command)[1:]]
        argv += few if argv[0] == "measure" else ["--limit", "8"] if argv[0] == "eval" else []
        assert main(argv) == 0, command
    python = re.search(r"```python\n(.*?)```", README, flags=re.S).group(1).replace("path/or/model.gguf", str(gguf))
    python = python.replace('MeasureConfig(metric="pplp", p=1.0)', 'MeasureConfig(metric="pplp", p=1.0, max_tokens=256, seq_len=64)')
    exec(compile(python, "README.md", "exec"), {})
    assert (tmp_path / "result.json").is_file() and (tmp_path / "sparse-model" / "config.json").is_file()
