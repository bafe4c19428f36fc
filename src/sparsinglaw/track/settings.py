"""How a run's checkpoints are tracked: the one settings type of training, studies and ``sparsinglaw
track``. Light (no torch), and below ``train/``, whose config embeds it."""

from __future__ import annotations

from dataclasses import dataclass

from sparsinglaw.config import Config

TRACK_MODES = ("cett-calibrated", "pplp")


@dataclass
class TrackSettings(Config):
    """How sparsity is tracked over a run's checkpoints, on its validation split: the one settings type of
    training (``[track]``), studies (``[track]``) and ``sparsinglaw track``.

    ``cett-calibrated`` (the default, as in the paper's training-dynamics study): one CETT calibrated so the
    mean PPL ratio of the last ``calibrate_last`` checkpoints is 1 + p/100, applied to every checkpoint with
    per-layer thresholds recomputed per checkpoint; the activation ratios of one run then differ only by
    the model, not by each checkpoint's own noisy PPL-p% solution. ``pplp``: PPL-p% solved per checkpoint.
    The defaults are the study presets' calibrated ones (16,384 validation tokens, 8 sequences a forward).
    ``input_sparsity``: also record, per checkpoint and in the same mode, the kept share of every
    projection's inputs and the weight bytes read (``sparsinglaw.track.inputs``; off by default: it adds a
    dense statistics pass and the input sparse passes per checkpoint).
    """

    p: float = 1.0  # PPL-p%: allowed perplexity increase in percent
    mode: str = "cett-calibrated"  # cett-calibrated | pplp
    calibrate_last: int = 5  # K checkpoints the calibrated CETT is fitted on
    max_tokens: int = 16_384  # validation tokens per measurement
    batch_size: int = 8  # sequences per forward pass
    tolerance: float = 1e-3
    warm_start: bool = True  # pplp: start each search at the nearest measured checkpoint's solution
    input_sparsity: bool = False  # also track input sparsity of every projection (docs/input_sparsity.md)

    def validate(self) -> None:
        self.check([
            (self.p > 0, "p", "must be > 0"),
            (self.mode in TRACK_MODES, "mode", f"is not one of {', '.join(TRACK_MODES)}"),
            (self.calibrate_last >= 1, "calibrate_last", "must be >= 1"),
            (self.max_tokens >= 2, "max_tokens", "must be >= 2"),
            (self.batch_size >= 1, "batch_size", "must be >= 1"),
            (self.tolerance > 0, "tolerance", "must be > 0"),
        ])

    @property
    def metric(self) -> str:
        """The results-store metric this mode's rows are recorded under."""
        return self.mode

    @property
    def input_metrics(self) -> tuple[str, str]:
        """The results-store metrics of input sparsity in this mode: kept share, and weight bytes read."""
        return f"input-{self.mode}", f"input-bytes-{self.mode}"

    def setting(self) -> dict:
        """The store key of this mode's rows (the calibrated c itself is in each row's result)."""
        if self.mode == "pplp":
            return {"p": self.p}
        return {"p": self.p, "calibrate_last": self.calibrate_last}
