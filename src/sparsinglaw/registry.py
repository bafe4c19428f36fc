"""One registry for everything looked up by name (metrics, adapters, law families, curve readers).

Registering a name twice is a ``ValueError`` unless ``replace=True``; an unknown name is a ``ConfigError``
listing the known ones. Iteration follows registration order; ``names()`` is sorted.

>>> from sparsinglaw.registry import Registry
>>> colours = Registry("colour")
>>> colours.register("red", 0xFF0000)
16711680
>>> colours.get("red") == colours["red"] == 0xFF0000
True
>>> colours.names(), "red" in colours, len(colours)
(['red'], True, 1)
>>> colours.get("blue")
Traceback (most recent call last):
...
sparsinglaw.errors.ConfigError: unknown colour 'blue'; known: red"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

from sparsinglaw.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named objects of one kind. ``kind`` names them in messages ("metric", "law", ...)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, obj: T, *, replace: bool = False) -> T:
        """Add ``obj`` under ``name`` and return it; ValueError if the name is taken and not ``replace``."""
        if not name:
            raise ValueError(f"{self.kind} names must be non-empty")
        if name in self._items and not replace:
            raise ValueError(f"{self.kind} {name!r} is already registered; pass replace=True to override it")
        self._items[name] = obj
        return obj

    def unregister(self, name: str) -> T:
        """Remove and return the entry ``name`` (ConfigError if unknown); for tests and plugins."""
        obj = self.get(name)
        del self._items[name]
        return obj

    def get(self, name: str) -> T:
        """The entry ``name``; ConfigError listing the known names otherwise."""
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(self.names()) or "none registered"
            raise ConfigError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def items(self) -> list[tuple[str, T]]:
        return list(self._items.items())

    def values(self) -> list[T]:
        return list(self._items.values())

    def copy(self) -> Registry[T]:
        """An independent registry with the same entries (tests swap one in to register throwaways)."""
        twin: Registry[T] = Registry(self.kind)
        twin._items = dict(self._items)
        return twin

    # Mapping-style reads, so code written against the former plain dicts (``LAWS["relu"]``,
    # ``for name in LAWS``) keeps working. ``[]`` raises KeyError like a dict; ``get`` is the friendly one.
    def __getitem__(self, name: str) -> T:
        return self._items[name]

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._items)})"
