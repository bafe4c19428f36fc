"""Measuring a training run's checkpoints into its results store (``sparsinglaw track``), for both targets:
``tracker`` (the modes, claims and resuming, driving one rows object per target: ``FFNNeuronRows`` there,
``inputs.ProjectionInputRows``), ``share`` (the calibrated pass done once for concurrent trackers)."""

from sparsinglaw.track.tracker import (
    TrackSettings,
    calibrate,
    checkpoint_hook,
    track,
    track_calibrated,
    track_inputs,
    track_pplp,
)

__all__ = ["TrackSettings", "calibrate", "checkpoint_hook", "track", "track_calibrated", "track_inputs",
           "track_pplp"]
