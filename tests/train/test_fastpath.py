"""The fused training step (train.fastpath) computes transformers' loss and gradients, trains a tiny run to
the same losses as the model's own forward, and leaves evaluation and the saved checkpoints standard."""

from __future__ import annotations

import os

import pytest
import torch
from train_helpers import tiny_dict

from sparsinglaw.errors import ConfigError
from sparsinglaw.train import TrainConfig, train
from sparsinglaw.train.config import ModelConfig
from sparsinglaw.train.fastpath import chunked_linear_cross_entropy, install_fused_loss
from sparsinglaw.train.modeling import build_model

VOCAB, SEQ = 300, 24

FAMILIES = {  # the three transformers families build_model chooses from
    "llama": dict(activation="relu"),
    "granite-mup": dict(activation="silu", mup=True),
    "gpt-neox": dict(activation="relu", gated=False),
}


def _model(**changes):
    torch.manual_seed(0)
    cfg = ModelConfig(hidden_size=32, num_layers=2, head_dim=16, **changes)
    return build_model(cfg, VOCAB, SEQ, bos_id=0, eos_id=1)


def _loss_and_grads(model, batch):
    model.zero_grad(set_to_none=True)
    loss = model(**batch).loss
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("num_items", [None, 150])
def test_fused_loss_and_gradients_match_the_models_own(family, num_items):
    model = _model(**FAMILIES[family])
    model.train()
    torch.manual_seed(1)
    ids = torch.randint(0, VOCAB, (3, SEQ))
    labels = ids.clone()
    labels[0, :5] = -100  # unlabelled positions are left out of the sum and the count
    batch = {"input_ids": ids, "labels": labels}
    if num_items is not None:
        batch["num_items_in_batch"] = torch.tensor(num_items)
    own_loss, own_grads = _loss_and_grads(model, batch)
    assert install_fused_loss(model)
    fused_loss, fused_grads = _loss_and_grads(model, batch)
    assert fused_loss.item() == pytest.approx(own_loss.item(), rel=1e-6)
    for name, grad in own_grads.items():
        torch.testing.assert_close(fused_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_chunking_does_not_change_the_loss():
    torch.manual_seed(0)
    hidden, weight = torch.randn(2, 50, 16), torch.randn(VOCAB, 16)
    labels = torch.randint(0, VOCAB, (2, 50))
    whole = chunked_linear_cross_entropy(hidden, weight, labels, chunk=1000)
    logits = hidden @ weight.t()
    reference = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, VOCAB), labels[:, 1:].reshape(-1))
    assert whole.item() == pytest.approx(reference.item(), rel=1e-6)
    for chunk in (1, 7, 64):  # chunks that split sequences and leave a remainder
        assert chunked_linear_cross_entropy(hidden, weight, labels, chunk=chunk).item() == pytest.approx(
            whole.item(), rel=1e-6)


def test_evaluation_keeps_the_models_own_forward():
    model = _model()
    install_fused_loss(model)
    model.eval()
    ids = torch.randint(0, VOCAB, (2, SEQ))
    out = model(input_ids=ids, labels=ids)
    assert out.logits is not None and out.logits.shape == (2, SEQ, VOCAB)


def test_fused_training_reaches_the_same_losses_as_the_models_own_forward(corpus, tmp_path):
    fused = train(TrainConfig.from_dict(tiny_dict(corpus, tmp_path / "fused")))
    own = train(TrainConfig.from_dict(tiny_dict(corpus, tmp_path / "own", fused_loss=False)))
    assert fused.tokens_seen == own.tokens_seen
    for a, b in zip(fused.checkpoints, own.checkpoints, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert a["eval_loss"] == pytest.approx(b["eval_loss"], rel=1e-4)


def test_compile_without_the_fused_loss_is_refused(corpus, tmp_path):
    with pytest.raises(ConfigError, match="fused_loss"):
        TrainConfig.from_dict(tiny_dict(corpus, tmp_path / "r", fused_loss=False, compile=True))


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("SPARSINGLAW_SLOW"), reason="compiling takes a minute on a loaded CPU")
def test_compiled_training_reaches_the_same_losses(corpus, tmp_path):
    compiled = train(TrainConfig.from_dict(tiny_dict(corpus, tmp_path / "compiled", compile=True)))
    eager = train(TrainConfig.from_dict(tiny_dict(corpus, tmp_path / "eager")))
    for a, b in zip(compiled.checkpoints, eager.checkpoints, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)


def test_compile_falls_back_to_the_eager_step_when_compiling_fails(monkeypatch, tmp_path, caplog):
    """No working C++ compiler: the first compiled step fails to build, one warning says so, and the step runs
    eagerly with the eager step's loss and gradients (here and on every later step)."""
    import torch._inductor.config as inductor

    monkeypatch.setattr(inductor.cpp, "cxx", ("/nonexistent/c++",))
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))  # nothing cached to hide the failure
    torch._dynamo.reset()
    ids = torch.randint(0, VOCAB, (2, SEQ), generator=torch.Generator().manual_seed(0))
    batch = {"input_ids": ids, "labels": ids}
    eager, compiled = _model(), _model()
    install_fused_loss(eager)
    install_fused_loss(compiled, compile_forward=True)
    for model in (eager, compiled):
        model.train()
    with caplog.at_level("WARNING", logger="sparsinglaw"):
        for _ in range(2):
            (loss, grads), (expected_loss, expected_grads) = _loss_and_grads(compiled, batch), _loss_and_grads(eager, batch)
            assert loss.item() == expected_loss.item()
            assert all(torch.equal(grads[name], expected_grads[name]) for name in grads)
    assert sum("torch.compile failed" in r.getMessage() for r in caplog.records) == 1
    torch._dynamo.reset()
