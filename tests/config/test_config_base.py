"""The one Config base: from_dict (unknown keys, wrong types, nested paths), merge of dotted overrides,
to_dict, TOML/YAML round trips for any Unicode, the validate hook, and one-line errors."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field

import pytest
import yaml

from sparsinglaw.config import Config, dumps_toml, toml_string
from sparsinglaw.errors import ConfigError, SparsingLawError

# Text TOML and YAML both make hard: an emoji outside the BMP (JSON escapes it as a surrogate pair, which
# TOML rejects), quotes of both kinds, backslashes, newlines, tabs, NUL and other controls, DEL, a line
# separator, a BOM and combining characters.
AWKWARD = ('run 😀🧪 "double" \'single\' back\\slash \\n not-a-newline\nnew line\r\n\ttab '
           '\x00\x01\x1b\x7f \u2028 \ufeff é e\u0301')


@dataclass
class Inner(Config):
    x: int = 1
    rate: float = 0.5
    label: str | None = None

    def validate(self) -> None:
        if self.x < 0:
            raise ConfigError(f"x={self.x} must be >= 0")


@dataclass
class Outer(Config):
    name: str = "run"
    inner: Inner = field(default_factory=Inner)
    items: list[Inner] = field(default_factory=list)
    tags: tuple[str, ...] = ("a",)
    limit: float | None = 2.0  # optional with a non-None default: TOML writes None as "none"
    free: dict = field(default_factory=dict)
    on: bool = False


def test_from_dict_builds_nested_configs_and_converts_integral_floats():
    cfg = Outer.from_dict({"inner": {"x": 3.0}, "items": [{"rate": 1}], "tags": ["b", "c"]})
    assert cfg.inner == Inner(x=3) and isinstance(cfg.inner.x, int)
    assert cfg.items == [Inner(rate=1.0)] and isinstance(cfg.items[0].rate, float)
    assert cfg.tags == ("b", "c")


@pytest.mark.parametrize(("data", "message"), [
    ({"inner": {"x": "abc"}}, "inner.x: expected int, got 'abc'"),
    ({"inner": {"rate": "fast"}}, "inner.rate: expected float, got 'fast'"),
    ({"items": [{}, {"x": 1.5}]}, "items[1].x: expected int, got 1.5"),
    ({"on": 1}, "on: expected bool, got 1"),
    ({"name": 5}, "name: expected str, got 5"),
    ({"inner": 3}, "inner must be a table of settings, got 3"),
    ({"inner": {"colour": 1}}, "unknown setting inner.colour (known: label, rate, x)"),
    ({"inner": {"x": -1}}, "inner.x=-1 must be >= 0"),  # the validate hook, located by from_dict
    ({"items": [{"x": -2}]}, "items[0].x=-2 must be >= 0"),
    ({"limit": float("nan")}, "limit: expected float, got nan"),
])
def test_from_dict_rejects_with_the_dotted_field(data, message):
    with pytest.raises(ConfigError) as err:
        Outer.from_dict(data)
    assert str(err.value) == message
    assert isinstance(err.value, SparsingLawError)


def test_validate_runs_on_creation():
    with pytest.raises(ConfigError, match=r"x=-5 must be >= 0"):
        Inner(x=-5)


def test_merge_parses_values_by_the_fields_type_and_leaves_the_original():
    cfg = Outer()
    merged = cfg.merge(["inner.x=7", "name=2024", "inner.label=none", "limit=null", "tags=['p', 'q']",
                        "items=[{x = 2}]", "free.deep.key=3", "free.text=hello world", "on=true"])
    assert merged.inner.x == 7 and merged.name == "2024" and merged.inner.label is None and merged.limit is None
    assert merged.tags == ("p", "q") and merged.items == [Inner(x=2)] and merged.on is True
    assert merged.free == {"deep": {"key": 3}, "text": "hello world"}
    assert cfg == Outer()  # merge returns a new config
    assert Outer().merge(['name="quoted text"']).name == "quoted text"


@pytest.mark.parametrize("quote", [toml_string, json.dumps])
def test_merge_takes_any_text_quoted_as_toml_or_json(quote):
    """Callers quote paths with json.dumps, which writes an emoji as a surrogate pair (TOML rejects it)."""
    assert Outer().merge([f"name={quote(AWKWARD)}", f"inner.label={quote('😀')}"]).name == AWKWARD


@pytest.mark.parametrize(("override", "message"), [
    ("inner.colour=1", "unknown setting inner.colour"),
    ("nothing.x=1", "unknown setting nothing"),
    ("name.x=1", "name is not a section"),
    ("inner.rate=abc", "inner.rate: expected float, got 'abc'"),
    ("novalue", "must look like key.sub=value"),
    ("inner..x=1", "must look like key.sub=value"),
])
def test_merge_rejects_bad_overrides(override, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        Outer().merge([override])


def _awkward_outer() -> Outer:
    return Outer(name=AWKWARD, inner=Inner(label=AWKWARD), items=[Inner(x=2, label="😀"), Inner()],
                 tags=(AWKWARD, ""), limit=None, free={"k": AWKWARD, "odd key ✓": {"n": [1, 2.5]}}, on=True)


@pytest.mark.parametrize("suffix", [".toml", ".yaml", ".yml"])
def test_file_round_trip_holds_any_unicode(tmp_path, suffix):
    cfg = _awkward_outer()
    path = cfg.to_file(tmp_path / f"cfg{suffix}")
    text = path.read_text(encoding="utf-8")
    parsed = yaml.safe_load(text) if suffix != ".toml" else tomllib.loads(text)  # valid for the format itself
    assert parsed["name"] == AWKWARD
    again = Outer.from_file(path)
    assert again == cfg and again.to_dict() == cfg.to_dict()
    assert again.limit is None  # "none" in TOML, null in YAML


def test_to_dict_is_plain_data():
    data = _awkward_outer().to_dict()
    assert data["inner"] == {"x": 1, "rate": 0.5, "label": AWKWARD}
    assert data["tags"] == [AWKWARD, ""] and isinstance(data["items"][0], dict)
    assert Outer.from_dict(data) == _awkward_outer()


def test_toml_string_escapes_only_what_toml_forbids():
    assert toml_string("😀") == '"😀"'  # not "\ud83d\ude00", which TOML rejects
    assert tomllib.loads(f"v = {toml_string(AWKWARD)}")["v"] == AWKWARD
    with pytest.raises(ConfigError, match="lone surrogate"):
        toml_string("bad \ud800")


def test_dumps_toml_nests_tables_and_arrays_of_tables():
    data = {"a": 1, "t": {"u": {"v": [1, 2]}, "w": "x"}, "rows": [{"p": 1, "sub": {"q": 2}}, {"p": 3}],
            "empty": {}, "none_list": [], "quoted key": True}
    assert tomllib.loads(dumps_toml(data)) == data


def test_load_layers_preset_file_and_overrides(tmp_path):
    from sparsinglaw.train.config import TrainConfig, tiny_preset

    path = tmp_path / "run.toml"
    path.write_text('preset = "tiny"\nseq_len = 32\n[optim]\nlr = 0.001\n', encoding="utf-8")
    cfg = TrainConfig.load(path, ["optim.lr=0.002", "model.activation=silu"])
    assert cfg.seq_len == 32 and cfg.optim.lr == 0.002 and cfg.model.activation == "silu"
    assert cfg.model.hidden_size == tiny_preset().model.hidden_size
    with pytest.raises(ConfigError, match=r"preset='nope' is not one of tiny|paper"):
        TrainConfig.load({"preset": "nope"})
