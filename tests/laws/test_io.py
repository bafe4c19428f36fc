"""Readers: paper JSON, JSON records, CSV, sniffing, a plugged-in reader, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sparsinglaw.errors import DataError
from sparsinglaw.laws import Curve, Reader, read_curve, read_curves
from sparsinglaw.laws.io import READERS, register_reader

TOKENS = [1e9, 2e9, 4e9, 8e9, 16e9]
RATIOS = [0.10, 0.09, 0.085, 0.082, 0.08]


def test_paper_json(data_dir):
    curve = read_curve(data_dir / "0.4b_relu.json")
    assert curve.name == "0.4b_relu" and curve.activation == "relu" and len(curve) == 40
    assert curve.meta["size_label"] == "0.4B"
    np.testing.assert_allclose(curve.d, curve.tokens / 1e9)


def test_json_records_grouped_by_model(tmp_path):
    recs = [{"model": "0.1b_silu", "tokens": t, "activation_ratio": r} for t, r in zip(TOKENS, RATIOS, strict=True)]
    recs += [{"model": "other", "tokens": t, "activation_ratio": r, "activation_fn": "ReLU"}
             for t, r in zip(TOKENS, RATIOS, strict=True)]
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"records": recs}))
    curves = read_curves(path)
    assert [c.name for c in curves] == ["0.1b_silu", "other"]
    assert curves[0].activation == "silu" and curves[1].activation == "relu"
    with pytest.raises(DataError, match="holds 2 curves"):
        read_curve(path)


@pytest.mark.parametrize("header", ["tokens,activation_ratio", "Token_Passed , Ratio", "n_tokens;act_ratio"])
def test_csv_header_aliases(tmp_path, header):
    sep = ";" if ";" in header else ","
    lines = [header] + [f"{t:g}{sep}{r}" for t, r in zip(TOKENS, RATIOS, strict=True)]
    path = tmp_path / "c.csv"
    path.write_text("\n".join(lines) + "\n")
    curve = read_curve(path)
    np.testing.assert_allclose(curve.tokens, TOKENS)
    np.testing.assert_allclose(curve.ratio, RATIOS)


def test_headerless_csv_and_sniffing_without_suffix(tmp_path):
    path = tmp_path / "points"
    path.write_text("\n".join(f"{t:g},{r}" for t, r in zip(TOKENS, RATIOS, strict=True)))
    assert len(read_curve(path)) == 5
    js = tmp_path / "points_json"
    js.write_text(json.dumps({"token_passed": TOKENS, "activation_ratio": RATIOS}))
    assert len(read_curve(js)) == 5


def test_unknown_format(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"\x00\x01binary")
    with pytest.raises(DataError, match="unknown format"):
        read_curve(path)
    weird = tmp_path / "x.json"
    weird.write_text(json.dumps({"foo": [1, 2]}))
    with pytest.raises(DataError, match="unknown JSON layout"):
        read_curve(weird)
    with pytest.raises(DataError, match="no such file"):
        read_curve(tmp_path / "missing.json")


@pytest.mark.parametrize(("tokens", "ratios", "why"), [
    ([1e9, 2e9, float("nan")], [0.1, 0.09, 0.08], "NaN"),
    ([1e9, 2e9, 3e9], [0.1, -0.09, 0.08], r"\[0, 1\]"),
    ([-1e9, 2e9, 3e9], [0.1, 0.09, 0.08], "positive"),
    ([1e9, 3e9, 2e9], [0.1, 0.09, 0.08], "not sorted"),
    ([1e9, 2e9, 2e9], [0.1, 0.09, 0.08], "duplicated"),
    ([], [], "no points"),
])
def test_bad_points_raise_data_error(tmp_path, tokens, ratios, why):
    with pytest.raises(DataError, match=why):
        Curve(tokens, ratios, "bad")
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"token_passed": tokens, "activation_ratio": ratios}).replace("NaN", "NaN"))
    with pytest.raises(DataError, match=why):
        read_curve(path)


def test_non_numeric_csv(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("tokens,activation_ratio\n1e9,0.1\nabc,0.2\n")
    with pytest.raises(DataError, match="non-numeric"):
        read_curve(path)


def test_store_reader_plugs_in(tmp_path):
    def load(path: Path) -> list[Curve]:
        return [Curve(TOKENS, RATIOS, "from-store", "relu")]

    register_reader(Reader("fake-store", (".fakedb",), load))
    try:
        path = tmp_path / "results.fakedb"
        path.write_bytes(b"")
        assert read_curve(path).name == "from-store"
    finally:
        READERS.unregister("fake-store")


def test_project_results_store_is_readable(tmp_path):
    """This project's SQLite results store (sparsinglaw.store.database) is read through the built-in sqlite reader."""
    store_mod = pytest.importorskip("sparsinglaw.store.database")
    store = store_mod.ResultsStore(tmp_path)
    store.add_run("r1", {"model": {"activation": "relu"}})
    for t, r in zip(TOKENS, RATIOS, strict=True):
        store.record("r1", f"ck{int(t)}", int(t), "pplp", setting={"p": 1}, activation_ratio=r)
    curves = read_curves(tmp_path)  # the run directory
    assert len(curves) == 1 and curves[0].activation == "relu"
    np.testing.assert_allclose(curves[0].ratio, RATIOS)
    export = tmp_path / "export.json"
    store.export_json(export, points_only=True)
    assert read_curve(export).activation == "relu"


def test_single_column_csv_is_a_clear_error(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("justonecolumn\n1\n2\n")
    with pytest.raises(DataError):
        read_curve(path)
