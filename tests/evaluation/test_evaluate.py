"""lm-eval on a tiny trained model: dense equals plain lm-eval, sparse really zeroes, hooks are removed."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("lm_eval")

from sparsinglaw.errors import ConfigError, ModelError  # noqa: E402
from sparsinglaw.evaluate import evaluate_dense_and_sparse  # noqa: E402

EVAL_ARGS = {"limit": 8, "bootstrap_iters": 0, "log_samples": True}
BATCH = 4


def zero_counter(model):
    """Forward hooks on every down projection counting exact zeros in its (possibly replaced) input,
    split by whether sparsinglaw's pre-hooks are attached at that moment."""
    counts = {"dense": [0, 0], "sparse": [0, 0]}

    def hook(module, args, _output):
        phase = "sparse" if module._forward_pre_hooks else "dense"
        counts[phase][0] += int((args[0] == 0).sum())
        counts[phase][1] += args[0].numel()

    handles = [layer.mlp.down_proj.register_forward_hook(hook) for layer in model.model.layers]
    return counts, handles


def loglikelihoods(result, task):
    return [[float(r[0]) for r in sample["filtered_resps"]] for sample in result["samples"][task]]


def plain_lm_eval(model, tokenizer, task, include_path):
    """lm-eval on a model that never had a hook attached, without going through sparsinglaw."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=BATCH, device="cpu")
    manager = TaskManager(include_path=str(include_path), include_defaults=False)
    return lm_eval.simple_evaluate(model=lm, tasks=[task], task_manager=manager, **EVAL_ARGS)


def test_dense_matches_plain_lm_eval_and_sparse_zeroes(tiny_lm, tiny_thresholds, mc_task):
    model, tokenizer, never_hooked = tiny_lm
    thresholds, result = tiny_thresholds
    include, task = mc_task
    counts, handles = zero_counter(model)
    try:
        report = evaluate_dense_and_sparse(model, tokenizer, thresholds, [task], include_path=str(include),
                                           batch_size=BATCH, **EVAL_ARGS)
    finally:
        for handle in handles:
            handle.remove()
    plain = plain_lm_eval(never_hooked, tokenizer, task, include)
    for module in model.modules():
        assert not module._forward_pre_hooks and not module._forward_hooks
    # Dense: the same numbers as lm-eval on an untouched copy, sample by sample, and nothing zeroed.
    dense_ll = loglikelihoods(report.raw["dense"], task)
    assert dense_ll == loglikelihoods(plain, task)
    assert {r.metric: r.dense for r in report.rows} == {"acc": plain["results"][task]["acc,none"],
                                                        "acc_norm": plain["results"][task]["acc_norm,none"]}
    assert counts["dense"][0] == 0 and counts["dense"][1] > 0
    # Sparse: activations really zeroed, counted independently, and the reported ratio agrees.
    zeros, total = counts["sparse"]
    assert zeros > 0 and total == counts["dense"][1]
    assert report.activation_ratio == pytest.approx(1 - zeros / total, abs=1e-12)
    assert report.activation_ratio < 1.0
    assert report.task_activation_ratio[task] == report.activation_ratio
    assert dense_ll != loglikelihoods(report.raw["sparse"], task)
    print(f"\ntiny: dense {[(r.metric, r.dense) for r in report.rows]} sparse {[(r.metric, r.sparse) for r in report.rows]}"
          f" eval activation ratio {report.activation_ratio:.4f} (calibration {result.activation_ratio:.4f})")
    table = report.table()
    assert task in table and "acc_norm" in table and f"{report.activation_ratio:.4f}" in table


def test_plain_threshold_list_and_refusals(tiny_lm, mc_task):
    model, tokenizer, _ = tiny_lm
    include, task = mc_task
    report = evaluate_dense_and_sparse(model, tokenizer, [1e9, 1e9], task, include_path=str(include),
                                       limit=4, bootstrap_iters=0, batch_size=BATCH)
    assert report.activation_ratio == 0.0 and len(report.rows) == 2
    with pytest.raises(ModelError, match="FFNs"):
        evaluate_dense_and_sparse(model, tokenizer, [1.0], task, include_path=str(include), limit=2)
    with pytest.raises(ConfigError, match="unknown lm-eval argument"):
        evaluate_dense_and_sparse(model, tokenizer, [0.0, 0.0], task, include_path=str(include), not_an_arg=1)
    for module in model.modules():
        assert not module._forward_pre_hooks
    assert torch.is_grad_enabled()


def test_sparse_ffn_modules_give_the_scores_of_masking_hooks(tiny_lm, tiny_thresholds, mc_task):
    """The sparse run through sparsinglaw.sparse's modules is the same thresholded model: same scores, same
    activation ratio; the original modules are back afterwards."""
    model, tokenizer, _ = tiny_lm
    thresholds, _ = tiny_thresholds
    include, task = mc_task
    mlps = [layer.mlp for layer in model.model.layers]
    runs = {mode: evaluate_dense_and_sparse(model, tokenizer, thresholds, [task], include_path=str(include),
                                            batch_size=BATCH, sparse_modules=mode, **EVAL_ARGS)
            for mode in (False, True)}
    hooks, modules = runs[False], runs[True]
    assert [layer.mlp for layer in model.model.layers] == mlps
    assert {r.metric: r.sparse for r in modules.rows} == {r.metric: r.sparse for r in hooks.rows}
    flat = {mode: [x for sample in loglikelihoods(run.raw["sparse"], task) for x in sample] for mode, run in runs.items()}
    assert flat[True] == pytest.approx(flat[False], abs=1e-4)
    assert modules.activation_ratio == pytest.approx(hooks.activation_ratio, abs=1e-3) and modules.activation_ratio < 1
