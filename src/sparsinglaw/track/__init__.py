"""Measuring a training run's checkpoints into its results store (``sparsinglaw track``): one tracker for
both targets, beside ``train/`` (which trains) rather than inside it.

``tracker``: the modes (PPL-p% per checkpoint, one calibrated CETT for all), claims in the store so
concurrent trackers share the work, resuming where a store left off; ``inputs``: the rows of the
projection-input target; ``share``: the calibrated pass done once when several trackers run on one run.
docs/architecture.md, "Files".
"""

from sparsinglaw.track.tracker import (
    TrackSettings,
    calibrate,
    checkpoint_hook,
    track,
    track_calibrated,
    track_inputs,
    track_inputs_calibrated,
    track_pplp,
)

__all__ = ["TrackSettings", "calibrate", "checkpoint_hook", "track", "track_calibrated", "track_inputs",
           "track_inputs_calibrated", "track_pplp"]
