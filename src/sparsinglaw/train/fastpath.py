"""A faster training step for the small models trained here, computing the same loss.

At the study's shapes (d = 64, vocabulary 2,048) the output head and its cross-entropy are about a third of
a training step: transformers materialises the whole ``tokens x vocabulary`` logits, a log-softmax of them
and, in the backward pass, a one-hot gradient and the log-softmax gradient, each a full pass over 16 MB.
``chunked_linear_cross_entropy`` instead walks the tokens in cache-sized chunks and computes, per chunk, the
loss and its gradients at once (the loss is the graph's last node, so the gradient of the logits,
``softmax - onehot``, is known in the forward pass; the "fused linear cross-entropy" of Liger-Kernel, Hsu et
al. 2024, arXiv 2410.10989, written in plain torch). The loss is the same sum of per-token cross-entropies
divided by the same count as transformers' ``ForCausalLMLoss``; only float rounding differs.

``install_fused_loss`` routes a model's training forward through it (evaluation keeps the model's own
forward, and the model object, its weights and its checkpoints stay standard transformers ones); with
``compile_forward`` that forward also runs under ``torch.compile`` (1.4-1.9x the tokens/s of the model's own
forward at the presets' shapes, benchmarks/RESULTS.md), falling back to the eager forward, with one warning,
where compiling fails (no working C++ compiler, say).
"""

from __future__ import annotations

import logging

import torch

log = logging.getLogger("sparsinglaw")

IGNORE_INDEX = -100  # transformers' label for "no loss here"
CHUNK_TOKENS = 512  # 512 x 2,048 logits (4 MB) per chunk: the fastest of 128-2,048 measured at vocabulary 2,048
# families whose training forward is base model -> final norm -> output head (x scale) -> ForCausalLMLoss
SUPPORTED = ("LlamaForCausalLM", "GraniteForCausalLM", "GPTNeoXForCausalLM")


class _LinearCrossEntropy(torch.autograd.Function):
    """mean over labelled tokens of CE(scale * hidden @ weight.T, targets); gradients found in the forward."""

    @staticmethod
    def forward(ctx, hidden, weight, targets, scale: float, denominator, chunk: int):
        labelled = targets != IGNORE_INDEX
        count = labelled.sum() if denominator is None else torch.as_tensor(denominator, device=hidden.device)
        inverse = 1.0 / count.to(hidden.dtype)  # a tensor, not a float: no graph break under torch.compile
        grad_hidden, grad_weight = torch.empty_like(hidden), torch.zeros_like(weight)
        total = hidden.new_zeros((), dtype=torch.float64)
        for start in range(0, hidden.shape[0], chunk):
            rows = slice(start, start + chunk)
            total += _chunk_loss_and_grads(hidden[rows], weight, targets[rows], labelled[rows], scale, inverse,
                                           grad_hidden[rows], grad_weight)
        ctx.save_for_backward(grad_hidden, grad_weight)
        return (total * inverse).to(hidden.dtype)

    @staticmethod
    def backward(ctx, grad_loss):
        grad_hidden, grad_weight = ctx.saved_tensors
        return grad_hidden * grad_loss, grad_weight * grad_loss, None, None, None, None


def _chunk_loss_and_grads(hidden, weight, targets, labelled, scale, inverse, grad_hidden, grad_weight):
    """Summed CE of one chunk; writes d(loss)/d(hidden) into ``grad_hidden`` and adds d(loss)/d(weight).

    With z = scale * h W^T and p = softmax(z): CE = logsumexp(z) - z[target], and dCE/dz = p - onehot(target),
    so dz/dh and dz/dW give grad_h = scale (p - onehot) W and grad_W = scale (p - onehot)^T h (each / count)."""
    logits = torch.mm(hidden, weight.t())
    if scale != 1.0:
        logits.mul_(scale)
    safe = torch.where(labelled, targets, 0)
    picked = logits.gather(1, safe[:, None]).squeeze(1)
    peak = logits.amax(1, keepdim=True)
    probs = logits.sub_(peak).exp_()  # in place: the logits are not needed again
    sums = probs.sum(1, keepdim=True)
    loss = ((sums.log() + peak).squeeze(1) - picked).mul_(labelled).sum()
    weight_per_row = labelled.to(probs.dtype) * (scale * inverse)
    probs.mul_(weight_per_row[:, None] / sums)
    probs[torch.arange(len(targets), device=probs.device), safe] -= weight_per_row
    torch.mm(probs, weight, out=grad_hidden)
    grad_weight.addmm_(probs.t(), hidden)
    return loss


def chunked_linear_cross_entropy(hidden, weight, labels, *, scale: float = 1.0, num_items_in_batch=None,
                                 chunk: int = CHUNK_TOKENS):
    """transformers' causal-LM loss of ``logits = scale * hidden @ weight.T`` without materialising the logits:
    position t predicts ``labels[t + 1]`` (the last position predicts nothing), summed over labelled tokens and
    divided by their count, or by ``num_items_in_batch`` when given (as ``ForCausalLMLoss`` does)."""
    targets = torch.nn.functional.pad(labels, (0, 1), value=IGNORE_INDEX)[..., 1:]
    with torch.autocast(hidden.device.type, enabled=False):  # float32 softmax, as transformers upcasts logits
        return _LinearCrossEntropy.apply(hidden.reshape(-1, hidden.shape[-1]).float(), weight.float(),
                                         targets.reshape(-1), float(scale), num_items_in_batch, chunk)


def _logit_scale(model) -> float:
    """Granite (the muP models) divides its logits by ``logits_scaling``; Llama and GPT-NeoX do not scale."""
    return 1.0 / float(getattr(model.config, "logits_scaling", 1.0) or 1.0)


def _compiled_or_eager(fn):
    """``torch.compile(fn)``, or ``fn`` itself for good when the first call fails to compile. Only a compiler
    failure on the first call falls back (an error in ``fn`` still raises), before any step ran compiled, so a
    run never switches paths halfway."""
    compiled, chosen = torch.compile(fn), None

    def call(*args):
        nonlocal chosen
        if chosen is not None:
            return chosen(*args)
        try:
            result = compiled(*args)
        except torch._dynamo.exc.BackendCompilerFailed as err:
            log.warning("compile=true: torch.compile failed (%s); training without it",
                        str(err).strip().splitlines()[0])
            chosen = fn
            return fn(*args)
        chosen = compiled
        return result

    return call


def install_fused_loss(model, *, compile_forward: bool = False) -> bool:
    """Route ``model``'s training forward (``labels`` given, ``model.training``) through the chunked loss;
    anything else (evaluation, generation, other arguments) goes to its own forward. Returns whether it was
    installed (False for a family outside ``SUPPORTED``, whose forward is left as it is)."""
    if type(model).__name__ not in SUPPORTED:
        log.info("fused loss: %s is not one of %s; training with its own forward", type(model).__name__, SUPPORTED)
        return False
    own_forward, scale = model.forward, _logit_scale(model)

    def training_forward(input_ids, labels, num_items_in_batch=None):
        from transformers.modeling_outputs import CausalLMOutputWithPast

        hidden = model.base_model(input_ids=input_ids).last_hidden_state
        loss = chunked_linear_cross_entropy(hidden, model.get_output_embeddings().weight, labels, scale=scale,
                                            num_items_in_batch=num_items_in_batch)
        return CausalLMOutputWithPast(loss=loss)

    step = _compiled_or_eager(training_forward) if compile_forward else training_forward

    def forward(input_ids=None, labels=None, num_items_in_batch=None, **kwargs):
        if model.training and labels is not None and input_ids is not None and not kwargs:
            return step(input_ids, labels, num_items_in_batch)
        if num_items_in_batch is not None:
            kwargs["num_items_in_batch"] = num_items_in_batch
        return own_forward(input_ids=input_ids, labels=labels, **kwargs)

    model.forward = forward  # an instance attribute: DDP and Trainer call it, save_pretrained never sees it
    return True
