"""Input thresholds as a thresholds-file kind: written, read back identically, applied (logits equal the
masked dense computation done by hand), combined with output thresholds, exported, and refused when the
kind or version is unknown."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers import random_eval_data, tiny_llama
from sparsinglaw.errors import ConfigError, ModelError
from sparsinglaw.inputs import InputConfig, measure_inputs
from sparsinglaw.measure import MeasureConfig, measure
from sparsinglaw.thresholds import (
    CombinedThresholds,
    InputThresholds,
    Thresholds,
    apply_thresholds,
    load_thresholds,
)


@pytest.fixture(scope="module")
def setup():
    """A tiny Llama, its data, and fixed-setting input sparsity of two methods (CETT and TEAL-uniform)."""
    model = tiny_llama().eval()
    data = random_eval_data(n_sequences=4, seq_len=32)
    config = InputConfig(methods=("cett", "teal-uniform"), p=None, cett=0.2, sparsity=0.5, batch_size=4)
    return model, data, measure_inputs(model, data, config)


class HandMasked(nn.Module):
    """``W (x * keep) + b`` with ``keep = |x_j| (* ||W[:, j]||) >= t``, written out here independently."""

    def __init__(self, linear: nn.Linear, threshold: float, weighted: bool):
        super().__init__()
        self.linear, self.threshold, self.weighted = linear, threshold, weighted

    def forward(self, x):
        magnitude = x.abs() * self.linear.weight.norm(dim=0) if self.weighted else x.abs()
        return F.linear(torch.where(magnitude >= self.threshold, x, torch.zeros_like(x)),
                        self.linear.weight, self.linear.bias)


def hand_masked_logits(model, thresholds: InputThresholds, ids):
    masked = copy.deepcopy(model)
    for row in thresholds.projections:
        path, _, leaf = row["name"].rpartition(".")
        parent = masked.get_submodule(path)
        setattr(parent, leaf, HandMasked(getattr(parent, leaf), row["threshold"], thresholds.weighted))
    with torch.no_grad():
        return masked(input_ids=ids).logits


@pytest.mark.parametrize("method", ["cett", "teal-uniform"])
def test_written_thresholds_read_back_identically(setup, method, tmp_path):
    model, _, result = setup
    written = InputThresholds.from_method(result, method)
    path = written.save(tmp_path / "input.json")
    data = json.loads(path.read_text())
    assert (data["format"], data["kind"], data["version"]) == ("sparsinglaw.thresholds", "input", 1)
    assert data["weighted"] is (method == "cett") and len(data["projections"]) == 2 * 7
    loaded = load_thresholds(path)
    assert isinstance(loaded, InputThresholds) and loaded.to_dict() == data
    assert loaded.projections == written.projections and loaded.method == written.method
    assert loaded.values == [p.threshold for p in result.method(method).projections]


def test_a_result_of_one_method_is_a_thresholds_file_and_of_several_is_refused(setup, tmp_path):
    _, _, result = setup
    both = result.save(tmp_path / "both.json")
    with pytest.raises(ConfigError, match="--thresholds-method"):
        load_thresholds(both)
    one = copy.copy(result)
    one.methods = [result.method("teal-uniform")]
    loaded = load_thresholds(one.save(tmp_path / "one.json"))
    assert loaded.projections == InputThresholds.from_method(result, "teal-uniform").projections


@pytest.mark.parametrize("method", ["cett", "teal-uniform"])
def test_applied_thresholds_give_the_hand_masked_logits_and_remove_restores_dense(setup, method):
    model, data, result = setup
    thresholds = InputThresholds.from_method(result, method)
    ids = data.input_ids[:2]
    with torch.no_grad():
        dense = model(input_ids=ids).logits
        handle = apply_thresholds(model, thresholds)
        sparse = model(input_ids=ids).logits
        handle.remove()
        handle.remove()  # twice is harmless
        after = model(input_ids=ids).logits
    want = hand_masked_logits(model, thresholds, ids)
    assert torch.allclose(sparse, want, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(sparse, dense, atol=1e-3)  # the masks really drop inputs
    assert torch.equal(after, dense)
    kept = handle.stats.activation_ratio
    assert 0.0 < kept < 1.0 and handle.input_stats is handle.stats


def test_thresholds_of_another_model_are_refused(setup):
    _, _, result = setup
    wider = tiny_llama(inter=192).eval()
    with pytest.raises(ModelError, match="measure thresholds on this model"):
        apply_thresholds(wider, InputThresholds.from_method(result, "cett"))


def test_combined_file_round_trips_and_applies_both_masks(setup, tmp_path):
    model, data, result = setup
    output = Thresholds.from_result(measure(model, data, MeasureConfig(metric="cett", cett=0.2, level=0.0)))
    inputs = InputThresholds.from_method(result, "teal-uniform")
    combined = CombinedThresholds(output=output, input=inputs)
    loaded = load_thresholds(combined.save(tmp_path / "combined.json"))
    assert isinstance(loaded, CombinedThresholds)
    assert loaded.to_dict() == json.loads((tmp_path / "combined.json").read_text())
    assert loaded.output.layers == output.layers and loaded.input.projections == inputs.projections
    ids = data.input_ids[:2]
    with torch.no_grad():
        with apply_thresholds(model, output), apply_thresholds(model, inputs):
            nested = model(input_ids=ids).logits
        with apply_thresholds(model, inputs):
            input_only = model(input_ids=ids).logits
        with apply_thresholds(model, loaded) as stats:
            both = model(input_ids=ids).logits
    assert torch.allclose(both, nested, atol=1e-6) and not torch.allclose(both, input_only, atol=1e-4)
    assert 0.0 < stats.activation_ratio < 1.0  # the FFN neurons' ratio, as for output thresholds


def test_output_files_without_a_kind_still_read_and_output_files_carry_one(setup, tmp_path):
    model, data, _ = setup
    output = Thresholds.from_result(measure(model, data, MeasureConfig(metric="cett", cett=0.2, level=0.0)))
    assert output.to_dict()["kind"] == "output"
    old = output.to_dict()
    del old["kind"]
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert load_thresholds(tmp_path / "old.json").values == output.values
    assert Thresholds.load(tmp_path / "old.json").values == output.values


@pytest.mark.parametrize("change, message", [
    ({"kind": "attention-heads"}, "kind 'attention-heads'"),
    ({"version": 99}, "input-thresholds version 99"),
    ({"weighted": "yes"}, "'weighted'"),
])
def test_unknown_kind_or_version_is_a_clear_error(setup, tmp_path, change, message):
    _, _, result = setup
    data = InputThresholds.from_method(result, "cett").to_dict() | change
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=message):
        load_thresholds(tmp_path / "bad.json")


def test_output_only_loader_refuses_input_files_with_what_to_do(setup, tmp_path):
    _, _, result = setup
    path = InputThresholds.from_method(result, "cett").save(tmp_path / "input.json")
    with pytest.raises(ConfigError, match="output .FFN neuron. thresholds only"):
        Thresholds.load(path)


LOADER = """
import sys, torch
from transformers import AutoModelForCausalLM
model = AutoModelForCausalLM.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
with torch.no_grad():
    torch.save(model(input_ids=torch.load(sys.argv[2])).logits, sys.argv[3])
"""


def test_exported_input_thresholds_give_the_applied_logits(setup, tmp_path):
    from sparsinglaw.export import CONFIG_KEY, export_sparse

    model, data, result = setup
    thresholds = InputThresholds.from_method(result, "cett")
    out = export_sparse(model, None, thresholds, tmp_path / "exported")
    spec = json.loads((out / "config.json").read_text())[CONFIG_KEY]
    assert spec["kind"] == "input" and len(spec["modules"]) == 14 and all(m["weighted"] for m in spec["modules"])
    assert isinstance(load_thresholds(out / "sparsity_thresholds.json"), InputThresholds)
    ids = data.input_ids[:2]
    torch.save(ids, tmp_path / "ids.pt")
    env = dict(os.environ, HF_MODULES_CACHE=str(tmp_path / "hf_modules"), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", LOADER, str(out), str(tmp_path / "ids.pt"), str(tmp_path / "l.pt")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with torch.no_grad(), apply_thresholds(model, thresholds):
        applied = model(input_ids=ids).logits
    assert torch.allclose(torch.load(tmp_path / "l.pt"), applied, atol=1e-5, rtol=1e-5)
