"""The names of a study directory's files: defined once in ``sparsinglaw.layout`` (which the study and the
report both import without importing each other), re-exported here for the study's modules."""

from sparsinglaw.layout import *  # noqa: F403
