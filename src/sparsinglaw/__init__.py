"""sparsinglaw: measure, predict and exploit activation sparsity in decoder-only LLMs.

The main entry points are importable from the top level, and each is imported on first use, so
``import sparsinglaw`` itself stays cheap (no torch, no transformers) and the CLI can start fast:

>>> import sparsinglaw
>>> sparsinglaw.__version__
'0.1.0'
>>> from sparsinglaw import MeasureConfig, measure, paper_curve_names
>>> MeasureConfig(metric="fat", epsilon=0.01).metric_value()
0.01
>>> len(paper_curve_names())
11

``measure`` is both the module ``sparsinglaw.measure`` and, called, its function ``measure.measure``:
``from sparsinglaw import measure; measure(model, data, config)`` and ``sparsinglaw.measure.MeasureConfig``
both work, whichever is imported first. On a tiny in-process model:

>>> import torch
>>> from transformers import LlamaConfig, LlamaForCausalLM
>>> from sparsinglaw import EvalData
>>> _ = torch.manual_seed(0)
>>> model = LlamaForCausalLM(LlamaConfig(
...     vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
...     num_key_value_heads=2, hidden_act="relu")).eval()
>>> data = EvalData(input_ids=torch.randint(0, 64, (4, 16)), source="random")
>>> result = measure(model, data, MeasureConfig(metric="zero"))
>>> result.metric, result.ppl_ratio, 0.2 < result.activation_ratio < 0.8
('zero', 1.0, True)
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

__version__ = "0.1.0"

# Public name -> the module that defines it. Imported lazily by ``__getattr__`` below.
_EXPORTS: dict[str, str] = {
    "MeasureConfig": "sparsinglaw.measure",
    "sweep": "sparsinglaw.measure",
    "MeasureResult": "sparsinglaw.results",
    "load_model": "sparsinglaw.models.loading",
    "register_adapter": "sparsinglaw.models.adapters",
    "EvalData": "sparsinglaw.data",
    "build_eval_data": "sparsinglaw.data",
    "load_documents": "sparsinglaw.data",
    "Thresholds": "sparsinglaw.thresholds",
    "apply_thresholds": "sparsinglaw.thresholds",
    "load_thresholds": "sparsinglaw.thresholds",
    "Config": "sparsinglaw.config",
    "get_metric": "sparsinglaw.metrics",
    "metric_names": "sparsinglaw.metrics",
    "register_metric": "sparsinglaw.metrics",
    "Curve": "sparsinglaw.laws",
    "read_curve": "sparsinglaw.laws",
    "read_curves": "sparsinglaw.laws",
    "fit_law": "sparsinglaw.laws",
    "fit_all": "sparsinglaw.laws",
    "register_law": "sparsinglaw.laws",
    "load_paper_curve": "sparsinglaw.laws.paper",
    "paper_coefficients": "sparsinglaw.laws.paper",
    "paper_curve_names": "sparsinglaw.laws.paper",
    "Registry": "sparsinglaw.registry",
    "SparsingLawError": "sparsinglaw.errors",
    "ConfigError": "sparsinglaw.errors",
    "DataError": "sparsinglaw.errors",
    "ModelError": "sparsinglaw.errors",
}

# Submodules that share their name with their main function: the module object is made callable, forwarding
# to that function. A plain lazy attribute cannot do this: the import system binds ``sparsinglaw.measure`` to
# the module whenever the submodule is first imported (by anyone), overwriting any function put there.
_CALLABLE_SUBMODULES = frozenset({"measure"})

__all__ = ["__version__", "measure", *_EXPORTS]


class _CallableModule(types.ModuleType):
    """A module whose call runs its function of the same name (``sparsinglaw.measure(...)``)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._function()(*args, **kwargs)

    def _function(self):
        return getattr(self, self.__name__.rpartition(".")[2])

    @property
    def __signature__(self):  # inspect.signature / help() / IDEs show the function's, not (*args, **kwargs)
        import inspect

        return inspect.signature(self._function())


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        # The import system calls this when it binds a freshly imported submodule to its parent.
        if name in _CALLABLE_SUBMODULES and type(value) is types.ModuleType:
            value.__class__ = _CallableModule
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    if name in _CALLABLE_SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
