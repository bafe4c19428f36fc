"""Measuring a training run's checkpoints into its results store (``sparsinglaw track``), for both targets:
``tracker`` (the modes, claims and resuming, driving one rows object per target: ``FFNNeuronRows`` there,
``inputs.ProjectionInputRows``), ``share`` (the calibrated pass done once for concurrent trackers),
``settings`` (``TrackSettings``, light: training's config embeds it). Below ``train/``: a run's files are read
through ``store.runs``, so training with tracking on imports the tracker, never the other way round.

The names below load the tracker (and torch) on first use, so importing ``track.settings`` stays cheap."""

import importlib
from typing import Any

__all__ = ["TrackSettings", "calibrate", "checkpoint_hook", "track", "track_calibrated", "track_inputs",
           "track_pplp"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module("sparsinglaw.track.tracker"), name)
