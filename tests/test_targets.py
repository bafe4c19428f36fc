"""Target specs: FFN neurons and projection inputs as two instances of one spec, looked up by name."""

from __future__ import annotations

import pytest
import torch

from helpers import random_eval_data, tiny_llama
from sparsinglaw.errors import ConfigError, ModelError
from sparsinglaw.targets import FFN_NEURONS, PROJECTION_INPUTS, TARGETS, combined, target
from sparsinglaw.thresholds import kinds


def test_each_target_answers_to_its_name_and_its_side():
    assert target("ffn-neurons") is target("output") is FFN_NEURONS
    assert target("projection-inputs") is target("input") is PROJECTION_INPUTS
    assert [s.name for s in combined(["output", "input", "ffn-neurons"])] == ["ffn-neurons", "projection-inputs"]
    with pytest.raises(ConfigError, match="known: ffn-neurons"):
        target("attention-heads")


@pytest.mark.parametrize("name", ["ffn-neurons", "projection-inputs"])
def test_a_target_finds_hooks_and_thresholds_its_units_without_the_caller_asking_which(name):
    """The same caller code on either target: find units, gather statistics after every unit, read CETT
    thresholds, zero inputs below them before every unit; the sparse forward changes the logits."""
    torch.manual_seed(0)
    spec = TARGETS.get(name)
    model, ids = tiny_llama(seed=1), random_eval_data(n_sequences=2).input_ids
    units = spec.find_units(model)
    stats = spec.statistics(units, anchors=3)
    with torch.no_grad():
        dense = model(input_ids=ids, use_cache=False).logits
        with spec.observe(units, stats.observe) as calls:
            model(input_ids=ids, use_cache=False)
        calls.require_called()
        low, high = spec.thresholds(stats, 0.05), spec.thresholds(stats, 0.3)
        assert len(low) == len(units) and all(0 < a < b for a, b in zip(low, high))

        def drop_all(unit, x, *rest):
            return torch.zeros_like(x)

        with spec.attach(units, drop_all) as calls:
            sparse = model(input_ids=ids, use_cache=False).logits
        calls.require_called()
    assert not torch.allclose(dense, sparse)
    assert spec.thresholds_kind in kinds()


@pytest.mark.parametrize("name", ["ffn-neurons", "projection-inputs"])
def test_hooks_that_never_fire_are_an_error(name):
    spec = TARGETS.get(name)
    units = spec.find_units(tiny_llama(seed=1))
    with spec.observe(units, lambda *args: None) as calls:
        pass  # no forward: the model's modules were bypassed
    with pytest.raises(ModelError, match="never fired"):
        calls.require_called()
