"""TEAL's block-wise greedy allocation of input sparsity (Liu et al. 2024, section 4, from the paper's
description).

Per block, on the dense model's own block inputs: each step raises the block's parameter-weighted
sparsity by ``step`` through the projection whose raise moves the block output least (L2, over the last
quarter of positions, as TEAL does) and records the allocation; a target reads its allocation off the
path. Thresholds are quantiles of the dense inputs' ``|x|``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from sparsinglaw.capture.passes import model_device
from sparsinglaw.errors import ConfigError
from sparsinglaw.models.adapters import decoder_blocks
from sparsinglaw.models.projections import Projection, attach_inputs
from sparsinglaw.progress import progress_bar
from sparsinglaw.targets.projection_inputs import InputStatistics, Setting, keep_mask, sparsity_setting


@dataclass
class GreedyPath:
    """Per block: block sparsities after each step (ascending, from 0) and the allocation at each."""

    block_sparsity: list[list[float]]  # [block][step]
    allocation: list[list[list[float]]]  # [block][step][projection of the block]

    def at(self, block: int, sparsity: float) -> list[float]:
        """The allocation of ``block`` at block sparsity ``sparsity`` (linear between recorded steps)."""
        xs = np.asarray(self.block_sparsity[block])
        ys = np.asarray(self.allocation[block])
        return [float(np.interp(sparsity, xs, ys[:, k])) for k in range(ys.shape[1])]


def capture_block_inputs(model, ids: torch.Tensor) -> list[tuple[tuple, dict]]:
    """(args, kwargs) each decoder block was called with in one dense forward of ``ids``."""
    blocks = decoder_blocks(model)
    seen: list[tuple[tuple, dict] | None] = [None] * len(blocks)
    handles = []

    def hook_for(b: int):
        def hook(module, args, kwargs):
            seen[b] = (tuple(a.detach() if torch.is_tensor(a) else a for a in args), dict(kwargs))
        return hook

    try:
        for b, block in enumerate(blocks):
            handles.append(block.register_forward_pre_hook(hook_for(b), with_kwargs=True))
        with torch.no_grad():
            model(input_ids=ids.to(model_device(model)), use_cache=False)
    finally:
        for handle in handles:
            handle.remove()
    return seen


def _block_output(block, call) -> torch.Tensor:
    out = block(*call[0], **call[1])
    return out[0] if isinstance(out, tuple) else out


def _error(target: torch.Tensor, new: torch.Tensor, last_fraction: float) -> float:
    start = int(target.shape[1] * (1 - last_fraction))
    return float((target[:, start:] - new[:, start:]).norm(dim=-1).mean())


def _run_block(block, call, projections: Sequence[Projection], thresholds: list[float]) -> torch.Tensor:
    local = {p.index: k for k, p in enumerate(projections)}

    def sparsify(p: Projection, x: torch.Tensor) -> torch.Tensor:
        return x * keep_mask(x, thresholds[local[p.index]], None)

    with torch.no_grad(), attach_inputs(projections, sparsify):
        return _block_output(block, call)


def greedy_block(block, call, projections: Sequence[Projection], stats: InputStatistics, step: float,
                 max_sparsity: float, last_fraction: float) -> tuple[list[float], list[list[float]]]:
    """The greedy path of one block: (block sparsities, allocations)."""
    sizes = np.array([p.parameters for p in projections], dtype=np.float64)
    steps = step * sizes.sum() / sizes  # raises the block's weighted sparsity by ``step``
    with torch.no_grad():
        target = _block_output(block, call)
    current = np.zeros(len(projections))
    path_s, path_a = [0.0], [current.tolist()]

    def thresholds(sparsities) -> list[float]:
        return [stats.histograms.quantile(p.index, float(s)) for p, s in zip(projections, sparsities)]

    while path_s[-1] < max_sparsity:
        best, best_error = None, float("inf")
        for k in range(len(projections)):
            if current[k] >= 1.0:
                continue
            trial = current.copy()
            trial[k] = min(1.0, trial[k] + steps[k])
            error = _error(target, _run_block(block, call, projections, thresholds(trial)), last_fraction)
            if error < best_error:
                best, best_error = trial, error
        if best is None:
            break
        current = best
        path_s.append(float((current * sizes).sum() / sizes.sum()))
        path_a.append(current.tolist())
    return path_s, path_a


def greedy_path(model, projections: Sequence[Projection], stats: InputStatistics, ids: torch.Tensor, *,
                step: float = 0.02, max_sparsity: float = 0.9, last_fraction: float = 0.25,
                progress: bool = False) -> GreedyPath:
    """TEAL's greedy allocation for every block, on calibration token ids ``ids`` (n, seq_len); ``progress``:
    a line per block (the path costs (blocks x steps x projections) block forwards: minutes on SmolLM2)."""
    if not 0 < step < max_sparsity <= 1:
        raise ConfigError(f"greedy step and max sparsity need 0 < step < max <= 1, got {step}, {max_sparsity}")
    calls = capture_block_inputs(model, ids)
    by_block: dict[int, list[Projection]] = {}
    for p in projections:
        by_block.setdefault(p.block, []).append(p)
    sparsities, allocations, blocks = [], [], decoder_blocks(model)
    with progress_bar(len(by_block), "TEAL greedy allocation", "block", enabled=progress) as bar:
        for b in sorted(by_block):
            s, a = greedy_block(blocks[b], calls[b], by_block[b], stats, step, max_sparsity, last_fraction)
            sparsities.append(s)
            allocations.append(a)
            bar.update(1)
    return GreedyPath(sparsities, allocations)


def greedy_setting(stats: InputStatistics, path: GreedyPath, sparsity: float) -> Setting:
    """Every block at block sparsity ``sparsity``, allocated along its greedy path."""
    per_projection = [0.0] * len(stats.projections)
    blocks = sorted({p.block for p in stats.projections})
    for row, b in enumerate(blocks):
        members = [p for p in stats.projections if p.block == b]
        for p, s in zip(members, path.at(row, sparsity)):
            per_projection[p.index] = s
    return sparsity_setting(stats, "teal-greedy", sparsity, per_projection)


__all__ = ["GreedyPath", "capture_block_inputs", "greedy_path", "greedy_setting"]
