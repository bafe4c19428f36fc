"""The one Registry rule, and that metrics, adapters, laws and readers all follow it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sparsinglaw.errors import ConfigError
from sparsinglaw.registry import Registry


def test_register_get_names_items_contains():
    reg: Registry[int] = Registry("thing")
    assert reg.register("b", 2) == 2 and reg.register("a", 1) == 1
    assert reg.get("a") == 1 and reg["b"] == 2
    assert reg.names() == ["a", "b"]  # sorted
    assert reg.items() == [("b", 2), ("a", 1)] and list(reg) == ["b", "a"]  # registration order
    assert "a" in reg and "c" not in reg and len(reg) == 2


def test_duplicates_need_replace():
    reg: Registry[int] = Registry("thing")
    reg.register("a", 1)
    with pytest.raises(ValueError, match="thing 'a' is already registered; pass replace=True"):
        reg.register("a", 2)
    assert reg.get("a") == 1
    reg.register("a", 3, replace=True)
    assert reg.get("a") == 3 and len(reg) == 1
    with pytest.raises(ValueError, match="non-empty"):
        reg.register("", 0)


def test_unknown_name_lists_known_names_sorted():
    reg: Registry[int] = Registry("widget")
    for name in ("zeta", "alpha", "mid"):
        reg.register(name, 0)
    with pytest.raises(ConfigError) as err:
        reg.get("nope")
    assert str(err.value) == "unknown widget 'nope'; known: alpha, mid, zeta"
    with pytest.raises(KeyError):
        reg["nope"]  # dict-style access keeps dict semantics
    with pytest.raises(ConfigError, match="known: none registered"):
        Registry("empty").get("x")


def test_copy_and_unregister_are_independent():
    reg: Registry[int] = Registry("thing")
    reg.register("a", 1)
    twin = reg.copy()
    twin.register("b", 2)
    assert "b" not in reg and twin.unregister("a") == 1 and "a" in reg
    with pytest.raises(ConfigError):
        twin.unregister("a")


def test_package_registries_share_the_rule():
    from sparsinglaw.laws.families import LAWS, get_law, register_law
    from sparsinglaw.laws.io import READERS, register_reader
    from sparsinglaw.metrics import get_metric, metric_names, register_metric
    from sparsinglaw.models.adapters import _REGISTRY, register_adapter

    assert {"pplp", "cett", "fat", "topk", "zero"} <= set(metric_names())
    assert {"relu", "silu", "log", "sigmoid"} <= set(LAWS.names())
    assert {"json", "csv", "sqlite"} <= set(READERS.names())
    assert len(_REGISTRY) > 0
    for lookup, known in ((get_metric, metric_names()), (get_law, LAWS.names())):
        with pytest.raises(ConfigError) as err:
            lookup("no-such-name")
        assert str(err.value).endswith("known: " + ", ".join(known))
    for register, obj in ((register_metric, get_metric("fat")), (register_law, LAWS["relu"]),
                          (register_reader, READERS["json"]), (register_adapter, _REGISTRY.values()[0])):
        with pytest.raises(ValueError, match="already registered"):
            register(obj)
        assert register(obj, replace=True) is obj


def test_reading_json_does_not_import_the_store(tmp_path):
    """The store's reader is registered explicitly and loads ``sparsinglaw.store.database`` only when used."""
    path = tmp_path / "c.json"
    path.write_text('{"token_passed": [1e9, 2e9, 3e9], "activation_ratio": [0.3, 0.2, 0.1]}')
    code = ("import sys; from sparsinglaw.laws.io import READERS, read_curve; "
            f"read_curve({str(path)!r}); assert 'sqlite' in READERS; "
            "print('sparsinglaw.store.database' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
