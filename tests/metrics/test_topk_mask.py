"""Top-k keeps exactly the k largest |s_i| per token, on both sides of k = d_f / 2 (two code paths)."""

from __future__ import annotations

import pytest
import torch

from sparsinglaw.metrics.topk import topk_mask


@pytest.mark.parametrize("ratio", [0.05, 0.3, 0.5, 0.51, 0.8, 0.97, 1.0])
def test_topk_mask_is_the_k_largest(ratio):
    s = torch.randn(3, 5, 97, generator=torch.Generator().manual_seed(0))
    mask = topk_mask(s, ratio)
    k = max(1, round(ratio * 97))
    assert mask.dtype == torch.bool and mask.shape == s.shape
    assert (mask.sum(-1) == k).all()
    order = s.abs().sort(dim=-1, descending=True).values
    kth = order[..., k - 1 : k]
    assert (s.abs()[mask].min() >= kth.min()) and ((s.abs() >= kth) == mask).all()
