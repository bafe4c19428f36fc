"""The one configuration base: typed dataclasses read from dicts, files and dotted overrides.

Every settings class subclasses ``Config``: a TOML or YAML file (optionally from a ``preset``), then
overrides ``key.sub=value`` with TOML scalar values. Unknown keys and wrong types raise ``ConfigError``
naming the dotted field; ``validate()`` checks ranges. Files round-trip any Unicode text (the TOML writer
escapes what basic strings forbid); TOML has no null, so a None field is left out or written ``"none"``."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Self, Union

from sparsinglaw.errors import ConfigError
from sparsinglaw.fileio import atomic_write_text

NULL_WORDS = ("none", "null")
YAML_SUFFIXES = (".yaml", ".yml")


class Config:
    """Base of every settings dataclass: ``from_dict``, ``merge``, ``to_dict``, ``to_file``/``from_file``,
    ``load`` (preset < file < overrides) and the ``validate`` hook, run on creation. A plain class, so that
    subclasses may be frozen dataclasses; no method mutates ``self``."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check ranges and combinations; raise ``ConfigError`` naming the field. Subclasses override."""

    def check(self, checks: list[tuple[bool, str, str]], section: str = "") -> None:
        """``validate``'s helper: for the first ``(ok, field, why)`` not ok, ``ConfigError("section.field=value
        why")``."""
        for ok, name, why in checks:
            if not ok:
                raise ConfigError(f"{section}.{name}={getattr(self, name)!r} {why}".lstrip("."))

    # --- building ---

    @classmethod
    def presets(cls) -> dict[str, typing.Callable[[], Config]]:
        """Named starting points (``preset = NAME`` in a file, or NAME as the source of ``load``)."""
        return {}

    @classmethod
    def upgrade(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Rewrite settings spelled by older versions into today's (run directories keep old files)."""
        return data

    @classmethod
    def from_dict(cls, data: Any, where: str = "") -> Self:
        """A validated instance; unknown keys and wrong types name the dotted field (``where`` prefixes it)."""
        if not isinstance(data, dict):
            raise ConfigError(f"{where or 'config'} must be a table of settings, got {data!r}")
        data = cls.upgrade(dict(data))
        hints = field_types(cls)
        unknown = sorted(set(data) - set(hints))
        if unknown:
            raise ConfigError(f"unknown setting {_join(where, unknown[0])} (known: {', '.join(sorted(hints))})")
        values = {name: coerce(value, hints[name], _join(where, name)) for name, value in data.items()}
        try:
            return cls(**values)
        except ConfigError as err:
            raise _located(err, where) from None

    @classmethod
    def load(cls, source: str | Path | dict[str, Any] | None = None, overrides: list[str] | None = None) -> Self:
        """From a file (TOML, or YAML by suffix), a dict or a preset name, then dotted overrides; a ``preset``
        key is expanded underneath (preset < file < overrides)."""
        presets = cls.presets()
        if source is None:
            data: dict[str, Any] = {}
        elif isinstance(source, dict):
            data = copy.deepcopy(source)
        elif str(source) in presets and not Path(source).exists():
            data = {"preset": str(source)}
        else:
            data = read_config_file(source)
        data = apply_overrides(cls, cls.upgrade(data), list(overrides or []))
        name = data.pop("preset", None)
        if name is not None:
            if name not in presets:
                known = ", ".join(presets) or "none for this kind of config"
                raise ConfigError(f"preset={name!r} is not one of {known}")
            data = deep_merge(presets[name]().to_dict(), data)
        return cls.from_dict(data)

    @classmethod
    def from_file(cls, path: str | Path) -> Self:
        return cls.load(Path(path))

    def merge(self, overrides: list[str]) -> Self:
        """A new, validated config with dotted ``key.sub=value`` overrides applied."""
        return type(self).from_dict(apply_overrides(type(self), self.to_dict(), list(overrides)))

    # --- writing ---

    def to_dict(self) -> dict[str, Any]:
        """Plain data (dicts, lists, scalars), field order kept."""
        return _plain(self)

    def to_toml(self) -> str:
        return dumps_toml(_toml_nulls(self, self.to_dict()))

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    def to_file(self, path: str | Path) -> Path:
        """Write TOML, or YAML by suffix, atomically (UTF-8)."""
        path = Path(path)
        return atomic_write_text(path, self.to_yaml() if path.suffix in YAML_SUFFIXES else self.to_toml())

    save = to_file


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _located(err: ConfigError, where: str) -> ConfigError:
    """A nested config's validation error with the dotted path in front (once)."""
    text = str(err)
    if not where or text.startswith((where + ".", where + ":", where + "=", where + "[")):
        return err
    return ConfigError(f"{where}.{text}")


def _plain(value: Any) -> Any:
    if isinstance(value, Config):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return copy.deepcopy(value)


# --- types ---

_HINTS: dict[type, dict[str, Any]] = {}


def field_types(cls: type) -> dict[str, Any]:
    """Field name -> resolved annotation (string annotations evaluated in the class's module)."""
    if cls not in _HINTS:
        hints = typing.get_type_hints(cls)
        _HINTS[cls] = {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}
    return _HINTS[cls]


def _optional(kind: Any) -> tuple[Any, bool]:
    """(the type without None, whether None is allowed)."""
    if typing.get_origin(kind) in (Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if len(args) < len(typing.get_args(kind)):
            return (args[0] if len(args) == 1 else kind), True  # X | Y | None: checked as a whole
    return kind, False


def _type_name(kind: Any) -> str:
    origin = typing.get_origin(kind)
    if origin is not None:
        return "list" if origin in (list, tuple) else "table" if origin is dict else str(kind)
    return getattr(kind, "__name__", str(kind))


def _is_config(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, Config)


def coerce(value: Any, kind: Any, where: str) -> Any:
    """``value`` as the annotated type ``kind``, or ``ConfigError`` naming ``where``."""
    if kind is Any:
        return value
    base, nullable = _optional(kind)
    if value is None or (nullable and base is not str and isinstance(value, str) and value.lower() in NULL_WORDS):
        if nullable:
            return None
        raise ConfigError(f"{where}: expected {_type_name(base)}, got nothing (None)")
    if _is_config(base):
        return value if isinstance(value, base) else base.from_dict(value, where)
    origin = typing.get_origin(base) or (base if base in (list, tuple, dict) else None)
    if origin in (list, tuple) and isinstance(value, list | tuple):
        args = typing.get_args(base)
        items = [coerce(v, args[0] if args else Any, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict and isinstance(value, dict):
        return copy.deepcopy(value)
    if origin is None:
        ok, converted = _scalar(value, base)
        if ok:
            return converted
    raise ConfigError(f"{where}: expected {_type_name(base)}, got {value!r}")


def _scalar(value: Any, kind: Any) -> tuple[bool, Any]:
    if kind is bool:
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return True, value.lower() == "true"
        return isinstance(value, bool), value
    if isinstance(value, bool):
        return False, value
    if kind is int:
        if isinstance(value, float) and value.is_integer():
            return True, int(value)  # 1e6 written in a file or on the command line
        return isinstance(value, int), value
    if kind is float:
        if isinstance(value, int | float) and math.isfinite(value):
            return True, float(value)
        return False, value
    if kind is str and isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False, value  # a lone surrogate: not Unicode text, no file could hold it
        return True, value
    return False, value


# --- overrides ---


def parse_override(text: str) -> tuple[list[str], Any]:
    """``model.activation=silu`` -> (["model", "activation"], "silu"): the value as a TOML scalar, else the
    text itself; ``none``/``null`` give None. (``Config.merge`` parses by the field's type instead.)"""
    key, raw = _split_override(text)
    value = _toml_scalar(raw)
    if isinstance(value, str) and value.lower() in NULL_WORDS:
        value = None
    return key, value


def _split_override(text: str) -> tuple[list[str], str]:
    key, sep, raw = text.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(p.strip() for p in parts):
        raise ConfigError(f"override {text!r} must look like key.sub=value")
    return [p.strip() for p in parts], raw.strip()


def _toml_scalar(raw: str) -> Any:
    """``raw`` as a TOML value; else, if it is a JSON string (``json.dumps`` writes an emoji as a surrogate
    pair, which TOML rejects), that string; else the text itself."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        pass
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        try:
            return json.loads(raw)
        except ValueError:
            pass
    return raw


def _typed_value(raw: str, kind: Any) -> Any:
    """An override's text as the field's type wants it: a text field keeps the text as typed (``name=2024``
    is the name "2024"; quoted text is unquoted), other fields parse it as TOML."""
    base, nullable = _optional(kind)
    if raw.lower() in NULL_WORDS and (nullable or kind is Any):
        return None
    value = _toml_scalar(raw)
    if base is str and not isinstance(value, str):
        return raw
    return value


def apply_overrides(cls: type | None, data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set each dotted override in ``data`` (the settings of ``cls``; None: a free table), checking the
    path against the fields as it goes."""
    for text in overrides:
        path, raw = _split_override(text)
        node, kind, where = data, cls, ""
        for part in path[:-1]:
            where = _join(where, part)
            kind = _section_type(kind, part, where, text)
            if not isinstance(node.get(part), dict):
                if node.get(part) is not None:
                    raise ConfigError(f"override {text!r}: {where} is not a section")
                node[part] = {}
            node = node[part]
        last, where = path[-1], _join(where, path[-1])
        if _is_config(kind) and last != "preset" and last not in field_types(kind):
            known = ", ".join(sorted(field_types(kind)))
            raise ConfigError(f"unknown setting {where} (known: {known})")
        hint = field_types(kind)[last] if _is_config(kind) and last in field_types(kind) else Any
        node[last] = _typed_value(raw, hint)
    return data


def _section_type(kind: type | None, part: str, where: str, text: str) -> type | None:
    """The config class of section ``part`` of ``kind`` (None inside a free table)."""
    if not _is_config(kind):
        return None
    hints = field_types(kind)
    if part not in hints:
        raise ConfigError(f"unknown setting {where} (known: {', '.join(sorted(hints))})")
    base, _ = _optional(hints[part])
    if _is_config(base):
        return base
    if base is Any or base is dict or typing.get_origin(base) is dict:
        return None
    raise ConfigError(f"override {text!r}: {where} is not a section")


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``update`` laid over it, tables merged key by key."""
    out = dict(base)
    for key, value in update.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


# --- files ---


def read_config_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    kind = "YAML" if path.suffix in YAML_SUFFIXES else "TOML"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read config {path}: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text; save it as UTF-8") from None
    try:
        if kind == "YAML":
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = tomllib.loads(text)
    except Exception as err:  # tomllib / yaml parse errors: report the first line, no traceback
        raise ConfigError(f"{path} is not valid {kind}: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a table of settings")
    return data


def _toml_nulls(config: Config, data: dict[str, Any]) -> dict[str, Any]:
    """``"none"`` for None fields whose default is not None (left out, they would read back as the default)."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, Config):
            data[f.name] = _toml_nulls(value, data[f.name])
        elif isinstance(value, list) and value and all(isinstance(v, Config) for v in value):
            data[f.name] = [_toml_nulls(v, d) for v, d in zip(value, data[f.name], strict=True)]
        elif value is None and f.default is not None and f.default is not dataclasses.MISSING:
            data[f.name] = "none"
    return data


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def toml_string(text: str) -> str:
    """A TOML basic string holding ``text`` exactly: the characters TOML forbids raw (controls, DEL) as
    ``\\uXXXX``, everything else (emoji included) as itself."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04x}")
        elif 0xD800 <= code <= 0xDFFF:
            raise ConfigError(f"{text!r} holds a lone surrogate (not Unicode text); it cannot be written")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else toml_string(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)  # inf, nan, 1e-08 and 1.1e+08 are TOML floats too
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items() if v is not None) + "}"
    if value is None:
        raise ConfigError("a list holds None, which TOML cannot write; save the config as YAML")
    raise ConfigError(f"cannot write {value!r} ({type(value).__name__}) as TOML")


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _write_table(lines: list[str], table: dict[str, Any], path: tuple[str, ...], header: str | None) -> None:
    if header is not None:
        lines += ["", header]
    for key, value in table.items():
        if value is not None and not isinstance(value, dict) and not _is_table_array(value):
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, value in table.items():
        name = ".".join(_toml_key(p) for p in (*path, key))
        if isinstance(value, dict):
            _write_table(lines, value, (*path, key), f"[{name}]")
        elif _is_table_array(value):
            for item in value:
                _write_table(lines, item, (*path, key), f"[[{name}]]")


def dumps_toml(data: dict[str, Any]) -> str:
    """TOML for nested plain data: scalars and arrays first, then one table (or array of tables) per
    section, recursively. None is left out (TOML has no null)."""
    lines: list[str] = []
    _write_table(lines, data, (), None)
    return "\n".join(lines).lstrip("\n") + "\n"


__all__ = ["Config", "apply_overrides", "coerce", "deep_merge", "dumps_toml", "parse_override", "read_config_file",
           "toml_string"]
