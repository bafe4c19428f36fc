"""Input sparsity of every linear projection (TEAL-style): which entries of each projection's
input matter, measured the CETT way and against TEAL's uniform and greedy baselines."""

from sparsinglaw.inputs.measure import METHODS, InputConfig, InputMeasurement, measure_inputs
from sparsinglaw.inputs.results import InputSparsityResult, MethodResult, ProjectionResult

__all__ = ["METHODS", "InputConfig", "InputMeasurement", "InputSparsityResult", "MethodResult", "ProjectionResult",
           "measure_inputs"]
