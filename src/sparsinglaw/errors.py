"""User-facing errors.

Every problem caused by input (a bad path, a bad parameter, a model we cannot read) is raised as a
``SparsingLawError`` whose message is one line that says what is wrong and what to do. The CLI prints
that line and exits non-zero without a traceback; the Python API lets it propagate.
"""

from __future__ import annotations


class SparsingLawError(Exception):
    """An error the user can fix. ``str(err)`` is a single actionable line."""

    exit_code = 2


class ConfigError(SparsingLawError):
    """A configuration field has an invalid value. The message names the field."""


class ModelError(SparsingLawError):
    """A model could not be loaded, or its FFN layers could not be found."""


class DataError(SparsingLawError):
    """Evaluation or training data is missing, unreadable or too short."""


class NoAnswerError(SparsingLawError):
    """A PPL-p% search found that no setting meets its target (saturated, or the trend crosses outside the
    settings); the message says why. Its results are kept, but no thresholds are written from it."""

    exit_code = 3


class NumericalError(SparsingLawError):
    """A loss or statistic became NaN or infinite (for example fp16 overflow)."""

