"""The Python API is the CLI's twin: same names, same defaults, same numbers on the same file."""

from __future__ import annotations

import dataclasses
import inspect
import json

import pytest

from helpers import saved_tiny_model
from sparsinglaw.cli import build_parser, main

# MeasureConfig fields with no CLI option of their own (--heatmap sets detail_tokens, --frequency-plot
# neuron_frequency; the rest are expert settings of the CETT statistics).
PYTHON_ONLY = {"anchors", "anchor_stride", "dead_threshold", "detail_tokens", "neuron_frequency"}


def test_every_measure_option_has_the_python_name_and_default():
    from sparsinglaw.measure import MeasureConfig

    args = build_parser("measure").parse_args(["measure", "--model", "M"])
    for field in dataclasses.fields(MeasureConfig):
        if field.name in PYTHON_ONLY:
            continue
        assert hasattr(args, field.name), f"measure has no --{field.name.replace('_', '-')}"
        assert getattr(args, field.name) == field.default, field.name


def test_measure_and_config_show_real_signatures():
    import sparsinglaw
    from sparsinglaw import MeasureConfig

    params = inspect.signature(sparsinglaw.measure).parameters
    assert list(params)[:3] == ["model", "data", "config"] and "tokenizer" in params
    config_params = inspect.signature(MeasureConfig).parameters
    assert {"max_tokens", "seq_len", "level", "n_boot"} <= set(config_params)
    assert not any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in config_params.values())


def test_files_with_the_old_field_names_still_read():
    from sparsinglaw import MeasureConfig

    config = MeasureConfig.from_dict({"ci_level": 0.5, "bootstrap_samples": 30})
    assert (config.level, config.n_boot) == (0.5, 30)


@pytest.mark.parametrize("flags", [["--metric", "cett", "--cett", "0.2"],
                                   ["--metric", "pplp", "--p", "1", "--start-cett", "0.1", "--n-boot", "50"]])
def test_same_file_same_numbers_from_python_and_cli(tmp_path, flags):
    from sparsinglaw import MeasureConfig, load_documents, load_model, measure
    from sparsinglaw.data import builtin_documents

    model_dir = saved_tiny_model(tmp_path / "model", hidden_act="relu")
    text = tmp_path / "my.txt"
    text.write_text("\n\n".join(builtin_documents()[:40]), encoding="utf-8")
    out = tmp_path / "cli.json"
    assert main(["measure", "--model", str(model_dir), "--data", str(text), "--seq-len", "64", "--max-tokens",
                 "512", *flags, "-o", str(out)]) == 0
    cli = json.loads(out.read_text())

    model, tokenizer = load_model(str(model_dir))
    options = dict(zip(flags[::2], flags[1::2]))
    config = MeasureConfig(metric=options["--metric"], seq_len=64, max_tokens=512, cett=float(options.get("--cett", 0.2)),
                           start_cett=float(options.get("--start-cett", 0.05)), n_boot=int(options.get("--n-boot", 1000)))
    api = measure(model, load_documents(str(text)), config, tokenizer=tokenizer).to_dict()

    assert (api["n_tokens"], api["seq_len"]) == (cli["n_tokens"], cli["seq_len"]) == (512, 64)
    for key in ("dense_ppl", "sparse_ppl", "ppl_ratio", "activation_ratio"):
        assert api[key] == pytest.approx(cli[key], rel=1e-9), key
    assert api["provenance"]["config"]["measure"] == cli["provenance"]["config"]["measure"]  # same settings, same names
