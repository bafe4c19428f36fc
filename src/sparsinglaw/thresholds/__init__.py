"""Fixed thresholds: the versioned thresholds file of every kind, applying it to a model, calibrating it
(docs/architecture.md, "Thresholds kinds").

``kinds``: the protocol every kind follows, the registry files are read through, the value checks;
``output``: FFN-neuron thresholds (kind ``output``), ``apply_thresholds`` and averaged calibration;
``inputs``: projection-input thresholds (kind ``input``) and both together (kind ``combined``). Importing
the package registers the three kinds (output first), so ``load_thresholds`` reads each of them."""

from sparsinglaw.thresholds.inputs import CombinedThresholds, InputThresholds
from sparsinglaw.thresholds.kinds import (
    FORMAT,
    THRESHOLDS_KINDS,
    AppliedThresholds,
    ThresholdsKind,
    check_threshold_values,
    kinds,
    load_thresholds,
    read_document,
    register_kind,
)
from sparsinglaw.thresholds.output import RULE, VERSION, Thresholds, apply_thresholds, calibrate_averaged

__all__ = ["FORMAT", "RULE", "THRESHOLDS_KINDS", "VERSION", "AppliedThresholds", "CombinedThresholds",
           "InputThresholds", "Thresholds", "ThresholdsKind", "apply_thresholds", "calibrate_averaged",
           "check_threshold_values", "kinds", "load_thresholds", "read_document", "register_kind"]
