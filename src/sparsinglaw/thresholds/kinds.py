"""The thresholds protocol: what every kind of thresholds file does, and reading any kind by its ``kind``
and ``version``.

Each kind (``output``, ``input``, ``combined``) is a ``ThresholdsKind``: it installs itself on a model
(the handle's ``remove()`` takes the hooks off), checks itself against one, describes and exports itself
and builds its sparse modules (``sparsify``, the same handle); consumers never ask which kind they hold.
Reading goes through ``THRESHOLDS_KINDS`` (keyed ``"KIND vVERSION"``); the built-in kinds register as
``sparsinglaw.thresholds`` is imported, which any import of this module does first (its ``__init__``); a
new kind calls ``register_kind``."""

from __future__ import annotations

import dataclasses
import json
import math
from abc import ABC, abstractmethod
from contextlib import ExitStack
from pathlib import Path
from typing import Any, ClassVar

from sparsinglaw.errors import ConfigError
from sparsinglaw.fileio import atomic_write_json
from sparsinglaw.registry import Registry

FORMAT = "sparsinglaw.thresholds"
DEFAULT_KIND = "output"  # files written before kinds existed have no "kind": they are output thresholds


class AppliedThresholds:
    """Thresholds applied to a model, as hooks (``ThresholdsKind.install``) or as sparse compute modules
    (``sparsify``): ``remove()`` takes the hooks off or puts the original modules back (twice is harmless);
    as a context manager it yields ``stats`` (the FFN neurons' counts for the output and combined kinds, the
    projection inputs' for the input kind) and removes them on exit; ``input_stats``: the projection
    inputs' counts (input and combined kinds), else None. Both ways count the same (token, unit) pairs."""

    def __init__(self, stack: ExitStack, stats, input_stats=None):
        self._stack, self.stats, self.input_stats = stack, stats, input_stats

    @classmethod
    def swapped(cls, handle, stats, input_stats=None) -> AppliedThresholds:
        """Sparse compute modules swapped in (``handle``: a ``sparse.modules.SwappedModules``)."""
        stack = ExitStack()
        stack.callback(handle.restore)
        return cls(stack, stats, input_stats)

    def remove(self) -> None:
        self._stack.close()

    def __enter__(self):
        return self.stats

    def __exit__(self, *exc) -> bool:
        self.remove()
        return False


class ThresholdsKind(ABC):
    """One kind of fixed thresholds (a dataclass with ``kind`` and ``version`` fields and their defaults)."""

    kind: str
    version: int
    sparse_modules: ClassVar[str]  # "ffn" or "projections": the sparse modules ``sparsify`` builds
    kept_quantity: ClassVar[str] = "activation ratio"  # what the counts of ``install`` measure, in words

    @property
    @abstractmethod
    def values(self) -> list[float]:
        """Every threshold, in file order."""

    @classmethod
    @abstractmethod
    def from_dict(cls, data: dict[str, Any], source: str | Path = "thresholds") -> ThresholdsKind:
        """The kind's document; ``ConfigError`` naming ``source`` when it is malformed."""

    @classmethod
    def from_result_document(cls, data: dict[str, Any], source: str | Path) -> ThresholdsKind | None:
        """The thresholds of a measurement result file (not a thresholds file), or None when ``data`` is
        not a result this kind reads."""
        return None

    def to_dict(self) -> dict[str, Any]:
        """The document ``from_dict`` reads back identically."""
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> Path:
        return atomic_write_json(path, self.to_dict())

    @abstractmethod
    def check(self, model) -> None:
        """``ModelError`` when ``model`` is not the model these thresholds were measured on."""

    @abstractmethod
    def install_hooks(self, model, stack: ExitStack) -> tuple[Any, Any]:
        """Put the masking hooks on ``model`` into ``stack``; (stats, input stats or None)."""

    def install(self, model) -> AppliedThresholds:
        """Apply the thresholds to ``model`` with hooks; the handle's ``remove()`` takes them off."""
        stack = ExitStack()
        try:
            return AppliedThresholds(stack, *self.install_hooks(model, stack))
        except BaseException:
            stack.close()
            raise

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """What a report records about the thresholds: the file's entries but the per-unit lists."""

    def entries(self, rows: str) -> dict[str, Any]:
        """The file's entries but its per-unit ``rows`` and provenance, with every threshold as ``values``."""
        return {k: v for k, v in self.to_dict().items() if k not in (rows, "provenance")} | {"values": self.values}

    @abstractmethod
    def export_spec(self, model) -> dict[str, Any]:
        """The ``config.json`` entry of an exported model (``sparsinglaw.export``)."""

    @abstractmethod
    def sparsify(self, model, *, policy=None) -> AppliedThresholds:
        """Swap ``model``'s modules for sparse compute modules at these thresholds, counting as ``install``
        does; ``policy``: when they fall back to dense (a ``sparse.SparsePolicy``; None: their defaults)."""


THRESHOLDS_KINDS: Registry[type[ThresholdsKind]] = Registry("thresholds kind")


def register_kind(cls: type[ThresholdsKind]) -> type[ThresholdsKind]:
    """Register ``cls`` under its ``kind`` and ``version`` (a class decorator)."""
    THRESHOLDS_KINDS.register(f"{cls.kind} v{cls.version}", cls)
    return cls


def kinds() -> list[str]:
    """The kinds this sparsinglaw reads, in registration order."""
    return list(dict.fromkeys(key.rsplit(" v", 1)[0] for key in THRESHOLDS_KINDS))


def read_document(data: dict[str, Any], source: str | Path = "thresholds",
                  kind: str | None = None) -> ThresholdsKind:
    """A thresholds document of any registered kind and version (``kind`` forces one, for the parts of a
    combined file); a known kind at an unknown version gets that kind's own message."""
    kind = kind or data.get("kind", DEFAULT_KIND)
    versions = [key for key in THRESHOLDS_KINDS if key.rsplit(" v", 1)[0] == kind]
    if not versions:
        raise ConfigError(f"{source} holds thresholds of kind {kind!r}; this sparsinglaw reads "
                          f"{', '.join(kinds())}: upgrade sparsinglaw or write the file again")
    key = f"{kind} v{data.get('version')}"
    return THRESHOLDS_KINDS[key if key in versions else versions[-1]].from_dict(data, source)


def load_thresholds(path: str | Path) -> ThresholdsKind:
    """Any thresholds file, by its ``kind`` and ``version``; also a measurement result a kind reads (an
    'sparsinglaw measure --output' result, an 'sparsinglaw inputs --output' result of one method)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"thresholds file {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ConfigError(f"{path} is not JSON; pass a thresholds file or a 'sparsinglaw measure --output' result") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is neither a thresholds file nor a measurement result")
    if data.get("format") == FORMAT:
        return read_document(data, path)
    for cls in THRESHOLDS_KINDS.values():
        loaded = cls.from_result_document(data, path)
        if loaded is not None:
            return loaded
    raise ConfigError(f"{path} is neither a thresholds file nor a measurement result")


def check_threshold_values(layers: Any, source: str | Path = "thresholds") -> list[float]:
    """The per-layer thresholds of ``layers`` (dicts with a "threshold") as floats; ``ConfigError`` naming the
    first layer whose threshold is missing, not a number, non-finite or negative (a NaN threshold would
    otherwise be written into an exported config and keep every neuron, silently dense)."""
    if not isinstance(layers, list) or not layers:
        raise ConfigError(f"{source}: no per-layer thresholds ('layers' must be a non-empty list)")
    values = []
    for i, layer in enumerate(layers):
        value = layer.get("threshold") if isinstance(layer, dict) else None
        name = layer.get("name", f"layer {i}") if isinstance(layer, dict) else f"layer {i}"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{source}: {name} has no numeric threshold (got {value!r})")
        if not math.isfinite(value) or value < 0:
            raise ConfigError(f"{source}: {name} has threshold {value}; thresholds must be finite and >= 0")
        values.append(float(value))
    return values
