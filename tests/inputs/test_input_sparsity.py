"""Input sparsity of every projection: the CETT-way thresholds, TEAL's baselines, bytes, PPL-p%."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from helpers import random_eval_data, tiny_llama
from sparsinglaw.capture.passes import SequenceLosses
from sparsinglaw.errors import ConfigError, ModelError
from sparsinglaw.inputs import InputConfig, InputMeasurement, InputSparsityResult, measure_inputs
from sparsinglaw.inputs.greedy import greedy_setting
from sparsinglaw.models.projections import find_projections, observe_outputs


@pytest.fixture(scope="module")
def measured():
    torch.set_num_threads(1)
    model, data = tiny_llama(seed=1), random_eval_data(n_sequences=8)
    m = InputMeasurement(model, data, InputConfig(p=None, greedy_step=0.05))
    m.dense()
    return model, data, m


def captured_inputs(model, data, projections):
    """Every projection's (x, y) over the whole data, from a dense forward."""
    seen = {p.index: [] for p in projections}
    with torch.no_grad(), observe_outputs(projections, lambda p, x, y: seen[p.index].append((x, y))):
        model(input_ids=data.input_ids, use_cache=False)
    return {i: (torch.cat([x.reshape(-1, x.shape[-1]) for x, _ in v]), torch.cat([y.reshape(-1, y.shape[-1]) for _, y in v]))
            for i, v in seen.items()}


def test_finds_all_seven_projections_of_every_block():
    model = tiny_llama(layers=3)
    found = find_projections(model)
    assert [p.kind for p in found] == ["q", "k", "v", "o", "gate", "up", "down"] * 3
    assert [p.block for p in found] == [b for b in range(3) for _ in range(7)]
    assert found[0].module is model.model.layers[0].self_attn.q_proj
    assert torch.allclose(found[6].down_column_norms(), model.model.layers[0].mlp.down_proj.weight.norm(dim=0))
    with pytest.raises(ModelError):
        find_projections(torch.nn.Linear(3, 3))


def test_cett_thresholds_give_the_target_relative_error(measured):
    model, data, m = measured
    inputs = captured_inputs(model, data, m.projections)
    for c in (0.05, 0.2):
        setting = m.setting("cett", c)
        for p in m.projections:
            x, y = inputs[p.index]
            dropped = x * (x.abs() * p.down_column_norms() < setting.thresholds[p.index])
            error = (dropped @ p.module.weight.detach().t()).norm(dim=-1) / y.norm(dim=-1)
            assert float(error.mean()) == pytest.approx(c, rel=0.15), (p.name, c)


def test_teal_uniform_keeps_the_same_share_of_every_projection(measured):
    _, _, m = measured
    evaluation = m.evaluate(m.setting("teal-uniform", 0.4))
    # q, k, v of block 0 see the dense inputs exactly; later projections see inputs the earlier drops moved.
    assert np.allclose(evaluation.kept_share[:3], 0.6, atol=0.003)
    assert np.allclose(evaluation.kept_share, 0.6, atol=0.05)
    cett = m.evaluate(m.setting("cett", 0.1))
    assert np.ptp(cett.kept_share) > 0.05  # the CETT rule spreads the kept share across projections


def test_greedy_path_raises_block_sparsity_by_steps_and_allocates_it(measured):
    _, _, m = measured
    path = m.greedy()
    for sparsities in path.block_sparsity:
        steps = np.diff(sparsities)
        assert np.all(steps > 0) and np.all(steps <= 0.05 + 1e-9)
        assert sparsities[-1] >= 0.9 - 1e-9
    setting = greedy_setting(m.stats, path, 0.5)
    sizes = np.array([p.parameters for p in m.projections], dtype=float)
    for b in range(len(path.block_sparsity)):
        rows = [p.index for p in m.projections if p.block == b]
        weighted = np.dot(np.array(setting.sparsities)[rows], sizes[rows]) / sizes[rows].sum()
        assert weighted == pytest.approx(0.5, abs=1e-6)
    assert np.ptp(setting.sparsities) > 0.05  # not uniform
    kept = m.evaluate(setting).kept_share
    assert np.allclose(kept, 1 - np.array(setting.sparsities), atol=0.06)


def test_bytes_per_token_follow_kept_shares(measured):
    model, _, m = measured
    result = m.fixed("teal-uniform", 0.5)
    dense = sum(p.numel() for p in model.parameters()) - model.model.embed_tokens.weight.numel() + 64
    assert m.bytes_per_token() == pytest.approx(4.0 * dense)
    projected = sum(r.kept_share * r.in_features * r.out_features for r in result.projections) * 4.0
    assert result.bytes_per_token == pytest.approx(projected + m.other_weights * 4.0)
    assert 0.5 < result.bytes_ratio < 0.7
    assert result.kept_share == pytest.approx(0.5, abs=0.02)


def test_result_round_trips_through_json(tmp_path):
    torch.set_num_threads(1)
    result = measure_inputs(tiny_llama(seed=2), random_eval_data(n_sequences=4), InputConfig(p=None, greedy_step=0.1))
    assert [m.method for m in result.methods] == ["cett", "teal-uniform", "teal-greedy"]
    loaded = InputSparsityResult.load(result.save(tmp_path / "inputs.json"))
    assert loaded.methods == result.methods  # typed rows back, every number equal
    assert loaded.dense_bytes_per_token == result.dense_bytes_per_token and loaded.schema == "sparsinglaw.inputs/1"
    assert "teal-greedy" in loaded.table()


def on_a_smooth_ratio_curve(m: InputMeasurement, monkeypatch, crossing: float) -> None:
    """Sparse passes whose PPL ratio is a known smooth curve of the method's value, crossing 1.03 at
    ``crossing``, with per-sequence scatter (their kept counts are the real passes')."""
    tokens = m.dense_losses.tokens.double()
    scatter = torch.linspace(-1, 1, len(tokens), dtype=torch.float64) * 0.002
    real = m.evaluate

    def evaluate(setting):
        evaluation = real(setting)
        log_ratio = math.log(1.03) * (setting.value / crossing) ** 3 * (1 + scatter)
        predicting = torch.ones_like(m.dense_losses.token_nll)
        predicting[:, -1] = 0  # the last position predicts nothing
        per_position = m.dense_losses.token_nll + predicting * log_ratio[:, None]
        evaluation.losses = SequenceLosses(per_position.sum(1), m.dense_losses.tokens, per_position)
        return evaluation

    monkeypatch.setattr(m, "evaluate", evaluate)


@pytest.mark.parametrize("method, crossing", [("cett", 0.08), ("teal-uniform", 0.45)])
def test_pplp_finds_the_crossing_of_a_smooth_ratio_curve(measured, monkeypatch, method, crossing):
    """The trend search over each method's parameter (sparsity ** 4 for TEAL) on a smooth ratio curve: the
    answer is where that curve crosses 1.03."""
    _, _, m = measured
    on_a_smooth_ratio_curve(m, monkeypatch, crossing)
    result = m.solve(method, 3.0)
    assert result.solution["converged"], result.search
    assert result.value == pytest.approx(crossing, rel=0.03)
    assert result.ppl_ratio == pytest.approx(1.03, abs=0.003)
    assert result.solution["sparse_passes"] == len(result.search) <= m.config.max_sparse_passes + 1
    assert result.kept_share < 1 and result.bytes_ratio < 1


def test_pplp_interval_resamples_a_sequence_s_blocks_in_groups_as_the_output_family_does(monkeypatch):
    """On 4 sequences of 256 tokens (16 blocks of 64) the answer's interval resamples 8 groups of two
    consecutive blocks of one sequence (``metrics.blocks.interval_groups``), as the output family's does,
    not the 16 blocks, whose activity is correlated within a sequence."""
    from sparsinglaw.targets import engine

    torch.set_num_threads(1)
    m = InputMeasurement(tiny_llama(seed=1), random_eval_data(n_sequences=4, seq_len=256), InputConfig(p=3.0))
    m.dense()
    on_a_smooth_ratio_curve(m, monkeypatch, 0.08)
    resampled = []

    def trend_interval(search, fit, active, slots, level, samples, seed, groups=None):
        resampled.append(groups)
        return real_interval(search, fit, active, slots, level, samples, seed, groups)

    real_interval = engine.trend_interval
    monkeypatch.setattr(engine, "trend_interval", trend_interval)
    result = m.solve("cett", 3.0)
    assert result.solution.interval is not None and len(resampled) == 1
    assert list(resampled[0]) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7]
    low, high = result.solution.interval.value
    assert low <= result.value <= high and result.solution.interval.kept_share[0] < result.kept_share


def test_pooled_position_counts_are_the_weighted_kept_share(measured):
    """A pass's per-position counts weigh each projection by its output rows: pooled, they are the share of
    projection weights read that the result reports."""
    _, _, m = measured
    evaluation = m.evaluate(m.setting("cett", 0.2))
    activity = evaluation.activity
    assert activity.by_position and activity.position_active.shape == (m.data.n_sequences, m.data.seq_len)
    pooled = float(activity.position_active.sum() / activity.position_slots.sum())
    assert pooled == pytest.approx(m.weighted_kept(evaluation), rel=1e-12) and 0 < pooled < 1


def test_config_is_validated():
    with pytest.raises(ConfigError):
        InputConfig(methods=("nope",))
    with pytest.raises(ConfigError):
        InputConfig(p=0)


def test_pplp_answer_carries_its_interval_or_says_why_not():
    """The trend interval (sequences resampled, trend refitted, no extra passes) is in the solution and in
    the table; below 8 sequences the result says why there is none."""
    config = InputConfig(p=5, methods=("cett",), tolerance=0.01)
    result = measure_inputs(tiny_llama(seed=2), random_eval_data(n_sequences=8), config)
    m = result.methods[0]
    iv = m.solution["interval"]
    assert iv["level"] == 0.9 and iv["value"][0] < iv["value"][1] and iv["kept_share"][0] < iv["kept_share"][1]
    assert all(0 < b <= 1 for b in iv["bytes_ratio"])
    assert "90% interval: value [" in result.table() and "sparse passes" in result.table()
    few_config = InputConfig(p=1, methods=("cett",), tolerance=0.01)  # 4 sequences of 32 tokens: 4 blocks
    few_result = measure_inputs(tiny_llama(seed=2), random_eval_data(n_sequences=4), few_config)
    few = few_result.methods[0]
    assert few.solution["interval"] is None and any("fewer than 8 to resample" in w for w in few.warnings)
    assert "cett: no interval (its warnings say why)" in few_result.table()
