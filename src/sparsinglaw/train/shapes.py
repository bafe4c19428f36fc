"""Model shape from a parameter budget and a width-depth ratio, or from explicit sizes.

docs/paper.md section 4: non-embedding parameters of the study's gated models are ``N = 11.5 d^2 L``
(attention 4 d^2 plus a gated FFN 3 * 2.5 d^2 per layer, d_f = 2.5 d), and r = d / L. In general the
per-layer coefficient is ``4 + k * ffn_mult`` with k = 3 matrices for a gated FFN and 2 for a plain one.
Given (N, r): d = r L, so N = c r^2 L^3 and L = (N / (c r^2))^(1/3); L is rounded to the nearest integer
and d to a multiple of the head size (the paper's 0.1B shape 768 x 16 comes out of N = 1.1e8, r = 48).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sparsinglaw.errors import ConfigError


@dataclass(frozen=True)
class Shape:
    hidden_size: int  # d
    num_layers: int  # L
    intermediate_size: int  # d_f
    num_heads: int
    num_kv_heads: int
    head_dim: int
    gated: bool

    @property
    def ratio(self) -> float:
        """Width-depth ratio r = d / L."""
        return self.hidden_size / self.num_layers

    def formula_params(self) -> int:
        """Non-embedding parameters by the paper's convention (matrices only; no norms or biases)."""
        d, kv = self.hidden_size, self.num_kv_heads * self.head_dim
        attention = 2 * d * d + 2 * d * kv  # q and o are d x d; k and v are d x (kv heads * head_dim)
        ffn = (3 if self.gated else 2) * d * self.intermediate_size
        return (attention + ffn) * self.num_layers

    def to_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio, "formula_non_embedding_params": self.formula_params()}


def coefficient(gated: bool, ffn_mult: float) -> float:
    """c in N = c d^2 L (11.5 for the paper's gated FFN with d_f = 2.5 d)."""
    return 4.0 + (3.0 if gated else 2.0) * ffn_mult


def _from_budget(model) -> tuple[int, int]:
    c = coefficient(model.gated, model.ffn_mult)
    layers = round((model.n_params / (c * model.ratio**2)) ** (1.0 / 3.0))
    if layers < 1:
        raise ConfigError(
            f"model.ratio={model.ratio:g} gives zero layers for model.n_params={model.n_params:g} "
            f"(L = (N / ({c:g} r^2))^(1/3) rounds to 0); lower the ratio or raise n_params"
        )
    hidden = round(model.ratio * layers / model.head_dim) * model.head_dim
    if hidden < model.head_dim:
        raise ConfigError(
            f"model.ratio={model.ratio:g} gives a hidden size below one head (model.head_dim={model.head_dim}) "
            f"with {layers} layers; raise the ratio or lower model.head_dim"
        )
    return hidden, layers


def resolve_shape(model) -> Shape:
    """The concrete shape of a ``ModelConfig``; ConfigError naming the field when it is impossible."""
    if model.hidden_size is not None:
        hidden, layers = model.hidden_size, model.num_layers
    else:
        hidden, layers = _from_budget(model)
    heads = model.num_heads or max(1, hidden // model.head_dim)
    if hidden % heads:
        raise ConfigError(f"model.num_heads={heads} does not divide model.hidden_size={hidden}")
    kv_heads = model.num_kv_heads or heads
    if heads % kv_heads:
        raise ConfigError(f"model.num_kv_heads={kv_heads} does not divide model.num_heads={heads}")
    inter = model.intermediate_size or max(1, round(model.ffn_mult * hidden))
    return Shape(hidden, layers, inter, heads, kv_heads, hidden // heads, model.gated)
