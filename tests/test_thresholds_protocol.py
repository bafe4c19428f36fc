"""The thresholds protocol: every kind reads through the registry by ``kind`` and ``version``, files
written before the protocol (tests/data/thresholds_v1, written by sparsinglaw at commit 6a4bd2a from a
tiny Llama) load with identical values and apply to the same numbers, and each kind does what the
protocol says (install / remove, check, describe, export, sparse modules) without its caller asking
which kind it holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from helpers import random_eval_data, tiny_llama
from sparsinglaw.errors import ConfigError, ModelError
from sparsinglaw.export import sparsity_spec
from sparsinglaw.thresholds import (
    THRESHOLDS_KINDS,
    ThresholdsKind,
    kinds,
    load_thresholds,
    read_document,
)

DATA = Path(__file__).parent / "data" / "thresholds_v1"
FILES = ["output.json", "output_without_kind.json", "input.json", "combined.json"]
EXPECTED = json.loads((DATA / "expected.json").read_text())


@pytest.fixture(scope="module")
def model():
    return tiny_llama().eval()


def test_every_builtin_kind_is_registered_by_kind_and_version():
    assert kinds() == ["output", "input", "combined"]
    assert {"output v1", "input v1", "combined v1"} <= set(THRESHOLDS_KINDS)


@pytest.mark.parametrize("name", FILES)
def test_files_from_before_the_protocol_load_with_identical_values(name):
    raw = json.loads((DATA / name).read_text())
    loaded = load_thresholds(DATA / name)
    assert isinstance(loaded, ThresholdsKind)
    assert loaded.kind == EXPECTED[name]["kind"]
    assert loaded.values == EXPECTED[name]["values"]  # bit for bit: JSON floats round-trip exactly
    written = loaded.to_dict()
    for doc in (written, written.get("output", {}), written.get("input", {})):
        doc.pop("provenance", None)
    raw.setdefault("kind", "output")
    assert written == raw


@pytest.mark.parametrize("name", FILES)
def test_files_from_before_the_protocol_apply_to_the_same_numbers(model, name):
    ids = random_eval_data(n_sequences=4, seq_len=32).input_ids[:2]
    loaded = load_thresholds(DATA / name)
    handle = loaded.install(model)
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    handle.remove()
    assert handle.stats.activation_ratio == pytest.approx(EXPECTED[name]["activation_ratio"], rel=1e-12)
    assert float(logits.double().sum()) == pytest.approx(EXPECTED[name]["logits_sum"], rel=1e-6)
    with torch.no_grad():  # removed: the dense model again
        dense = model(input_ids=ids).logits
    assert not torch.equal(dense, logits)


@pytest.mark.parametrize("name", FILES)
def test_each_kind_checks_describes_and_exports_itself(model, name):
    loaded = load_thresholds(DATA / name)
    loaded.check(model)
    described = loaded.describe()
    assert described["values"] == loaded.values and "provenance" not in described
    spec = sparsity_spec(model, loaded)
    assert spec["kind"] == loaded.kind
    assert sorted(m["threshold"] for m in spec["modules"] if m["threshold"]) == sorted(v for v in loaded.values if v)
    with pytest.raises(ModelError, match="measure thresholds on this model"):
        loaded.check(tiny_llama(inter=192).eval())


@pytest.mark.parametrize("name", FILES)
def test_each_kind_builds_sparse_modules_matching_its_hooks(model, name):
    ids = random_eval_data(n_sequences=4, seq_len=32).input_ids[:1, :4]
    loaded = load_thresholds(DATA / name)
    with torch.no_grad(), loaded.install(model):
        masked = model(input_ids=ids).logits
    with torch.no_grad(), loaded.sparsify(model) as counts:
        sparse = model(input_ids=ids).logits
        assert 0.0 < counts.activation_ratio < 1.0
    assert torch.allclose(sparse, masked, atol=1e-4, rtol=1e-4)
    assert not any("Sparse" in type(m).__name__ for m in model.modules())


def test_unknown_kind_and_version_are_one_line_errors(tmp_path):
    doc = json.loads((DATA / "input.json").read_text())
    with pytest.raises(ConfigError, match="kind 'heads'; this sparsinglaw reads output, input, combined"):
        read_document(dict(doc, kind="heads"))
    with pytest.raises(ConfigError, match="input-thresholds version 9"):
        read_document(dict(doc, version=9))
