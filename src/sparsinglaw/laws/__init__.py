"""Fit and use the sparsing laws of docs/paper.md sections 3-4 (activation ratio vs data, width-depth, scale).

Python API (no CLI needed)::

    from sparsinglaw.laws import backtest, fit_all, fit_law, predict, read_curve, tokens_to_within
    curve = read_curve("0.4b_relu.json")            # paper JSON, JSON records, CSV or a results store
    result = fit_law(curve, "relu", n_boot=200)     # FitResult: params by name, MAE/MSE/AIC/BIC, intervals
    result.limit.identified, result.limit.describe(), result.to_dict()
    report = fit_all(curve, rank_by="bic")          # every law, ranked; failures listed, not raised
    predict(result, 1e12), tokens_to_within(result, 1e-3), backtest(curve, "relu", 0.5)

The paper's own curves ship with the package (``sparsinglaw.laws.paper``); fitting one lands on the
published coefficients' error:

>>> from sparsinglaw.laws import fit_law, load_paper_curve, paper_coefficients
>>> curve = load_paper_curve("0.1b_relu")
>>> result = fit_law(curve, "relu", interval="none")
>>> result.mae <= 1.05 * paper_coefficients("0.1b_relu").mae_on(curve)
True
>>> round(result.params["A0"], 2)
0.06

Plots live in ``sparsinglaw.laws.plots`` (imported on demand: it loads matplotlib).
"""

from sparsinglaw.laws.curve import Curve
from sparsinglaw.laws.families import LAWS, Law, get_law, law_for_activation, register_law
from sparsinglaw.laws.fit import FitOptions, LawFitError, assess_limit, fit_all, fit_law
from sparsinglaw.laws.io import Reader, read_curve, read_curves, register_reader
from sparsinglaw.laws.paper import PaperFit, load_paper_curve, paper_coefficients, paper_curve_names
from sparsinglaw.laws.predict import Backtest, Prediction, Reach, backtest, predict, tokens_to_within
from sparsinglaw.laws.profile import profile_interval
from sparsinglaw.laws.results import FitReport, FitResult, Interval, LimitEstimate
from sparsinglaw.laws.scale import ScaleComparison, compare_limits, convergence_speed, non_embedding_params
from sparsinglaw.laws.widthdepth import HingeFit, LossRange, fit_hinge, loss_optimal_range

__all__ = [
    "LAWS", "Backtest", "Curve", "FitOptions", "FitReport", "FitResult", "HingeFit", "Interval", "Law",
    "LawFitError", "LimitEstimate", "LossRange", "PaperFit", "Prediction", "Reach", "Reader",
    "ScaleComparison", "assess_limit", "backtest", "compare_limits", "convergence_speed", "fit_all",
    "fit_hinge", "fit_law", "get_law", "law_for_activation", "load_paper_curve", "loss_optimal_range",
    "non_embedding_params", "paper_coefficients", "paper_curve_names", "predict", "profile_interval",
    "read_curve", "read_curves", "register_law", "register_reader", "tokens_to_within",
]
