"""``sparsinglaw inputs`` on a tiny saved model (parser built here: the lead adds it to cli.SUBCOMMANDS)."""

from __future__ import annotations

import argparse
import json

import pytest

from helpers import saved_tiny_model
from sparsinglaw.cli import inputs
from sparsinglaw.errors import ConfigError, ModelError


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    inputs.register(parser.add_subparsers())
    return parser.parse_args(["inputs", *argv])


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return saved_tiny_model(tmp_path_factory.mktemp("tiny"))


def test_inputs_fixed_settings_write_json(model_dir, tmp_path, capsys):
    out = tmp_path / "inputs.json"
    args = parse("--model", str(model_dir), "--fixed", "--methods", "cett,teal-uniform", "--seq-len", "64",
                 "--max-tokens", "256", "--output", str(out), "--threads", "1")
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "teal-uniform" in printed and "MB/token" in printed
    result = json.loads(out.read_text())
    assert result["schema"] == "sparsinglaw.inputs/1"
    assert [m["method"] for m in result["methods"]] == ["cett", "teal-uniform"]
    assert all(0 < m["bytes_ratio"] < 1 for m in result["methods"])


def test_inputs_refuses_an_unknown_method(model_dir):
    args = parse("--model", str(model_dir), "--methods", "cett,bogus")
    with pytest.raises(ConfigError, match="methods"):
        args.func(args)


def test_inputs_kinds_pick_projections_by_name(model_dir, tmp_path):
    out = tmp_path / "inputs.json"
    args = parse("--model", str(model_dir), "--fixed", "--methods", "cett", "--kinds", "q,down", "--seq-len", "64",
                 "--max-tokens", "128", "--output", str(out), "--threads", "1")
    assert args.func(args) == 0
    projections = json.loads(out.read_text())["methods"][0]["projections"]
    assert {p["kind"] for p in projections} == {"q", "down"}
    args = parse("--model", str(model_dir), "--fixed", "--kinds", "qkv", "--seq-len", "64", "--max-tokens", "128")
    with pytest.raises(ModelError, match="no qkv"):
        args.func(args)
