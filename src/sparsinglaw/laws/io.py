"""Readers for activation curves, in a small registry keyed by file suffix and content sniffing.

Built in: the paper's JSON (``{"token_passed": [...], "activation_ratio": [...]}``), this project's JSON
records (``[{"tokens": ..., "activation_ratio": ...}, ...]``, split by ``model`` / ``name`` / ``run``), CSV
with token and activation-ratio columns, and the SQLite results store (``sqlite``, its module imported on
first use; a run directory reads as its store). Another format: ``register_reader(Reader(...))``."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparsinglaw.errors import DataError
from sparsinglaw.laws.curve import Curve, parse_name
from sparsinglaw.registry import Registry

TOKEN_KEYS = ("token_passed", "tokens", "token", "tokens_seen", "n_tokens", "num_tokens", "train_tokens")
RATIO_KEYS = ("activation_ratio", "ratio", "act_ratio", "activation_rate", "a")
ACT_KEYS = ("activation_fn", "act_fn", "activation_function", "activation")
GROUP_KEYS = ("model", "name", "run", "curve")
STORE_FILENAME = "results.sqlite"


@dataclass(frozen=True)
class Reader:
    """A curve reader: ``load(path)`` returns curves; chosen by suffix or by ``sniff(path, head)``."""

    name: str
    suffixes: tuple[str, ...]
    load: Callable[[Path], list[Curve]]
    sniff: Callable[[Path, bytes], bool] | None = None


READERS: Registry[Reader] = Registry("curve reader")


def register_reader(reader: Reader, *, replace: bool = False) -> Reader:
    """Add a reader under its ``name`` (``replace=True`` to override one)."""
    return READERS.register(reader.name, reader, replace=replace)


def _pick(keys: Any, aliases: tuple[str, ...]) -> str | None:
    lowered = {str(k).strip().lower(): k for k in keys}
    return next((lowered[a] for a in aliases if a in lowered), None)


def _defaults(path: Path) -> dict[str, Any]:
    return {"source": str(path), **parse_name(path.stem)}


def _curve(tokens: list, ratio: list, name: str, meta: dict[str, Any]) -> Curve:
    try:
        tok = [float(t) for t in tokens]
        rat = [float(r) for r in ratio]
    except (TypeError, ValueError) as err:
        raise DataError(f"{name}: non-numeric value ({err})") from None
    return Curve(tok, rat, name, meta.get("activation"), meta)


def curves_from_records(records: list[dict], name: str, meta: dict[str, Any]) -> list[Curve]:
    """Curves from records ``{"tokens": ..., "activation_ratio": ...}``, grouped by a model key if any."""
    if not records or not all(isinstance(r, dict) for r in records):
        raise DataError(f"{name}: expected a non-empty list of records with tokens and activation_ratio")
    tkey, rkey = _pick(records[0], TOKEN_KEYS), _pick(records[0], RATIO_KEYS)
    if tkey is None or rkey is None:
        raise DataError(f"{name}: records need a token column ({'/'.join(TOKEN_KEYS[:3])}) and "
                        f"an activation_ratio column; got {', '.join(map(str, records[0]))}")
    gkey = _pick(records[0], GROUP_KEYS)
    groups: dict[str, list[dict]] = {}
    for rec in records:
        groups.setdefault(str(rec.get(gkey, name)) if gkey else name, []).append(rec)
    curves = []
    for label, recs in groups.items():
        info = {**meta, **parse_name(label)}
        akey = _pick(recs[0], ACT_KEYS)
        act = recs[0].get(akey) if akey else None
        if isinstance(act, str):
            info["activation"] = str(act).lower()
        curves.append(_curve([r.get(tkey) for r in recs], [r.get(rkey) for r in recs], label, info))
    return curves


def _load_json(path: Path) -> list[Curve]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: cannot read JSON ({err})") from None
    meta = _defaults(path)
    if isinstance(data, dict) and isinstance(data.get("records"), list):
        meta.update({k: v for k, v in data.items() if k != "records" and isinstance(v, str | int | float)})
        data = data["records"]
    if isinstance(data, list):
        return curves_from_records(data, path.stem, meta)
    if isinstance(data, dict):
        tkey, rkey = _pick(data, TOKEN_KEYS), _pick(data, RATIO_KEYS)
        if tkey and rkey and isinstance(data[tkey], list):
            akey = _pick(data, ACT_KEYS)
            if akey and isinstance(data[akey], str):
                meta["activation"] = data[akey].lower()
            return [_curve(data[tkey], data[rkey], path.stem, meta)]
    raise DataError(f"{path}: unknown JSON layout (want token_passed/activation_ratio lists or records)")


def _load_csv(path: Path) -> list[Curve]:
    try:
        text = path.read_text()
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err})") from None
    try:
        dialect = csv.Sniffer().sniff(text[:2048], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = [r for r in csv.reader(io.StringIO(text), dialect) if any(c.strip() for c in r)]
    if not rows:
        raise DataError(f"{path}: empty CSV")
    header = [c.strip() for c in rows[0]]
    if _pick(header, TOKEN_KEYS) is None and len(header) == 2 and _numeric(header):
        header, body = ["tokens", "activation_ratio"], rows  # headerless two-column file
    else:
        body = rows[1:]
    records = [dict(zip(header, (c.strip() for c in r), strict=False)) for r in body]
    return curves_from_records(records, path.stem, _defaults(path))


def _numeric(cells: list[str]) -> bool:
    try:
        [float(c) for c in cells]
    except ValueError:
        return False
    return True


def _sniff_json(path: Path, head: bytes) -> bool:
    return head.lstrip()[:1] in (b"{", b"[")


def _sniff_csv(path: Path, head: bytes) -> bool:
    first = head.decode("utf-8", "replace").splitlines()[0] if head.strip() else ""
    return any(sep in first for sep in ",;\t")


def store_curves(path: Path) -> list[Curve]:
    """Curves in a run's results store (``store.database``) for the law fitters: one per (run, metric,
    setting) with activation ratios."""
    # here: the store pulls in sqlite3, which reading a JSON or CSV curve never needs
    from sparsinglaw.store.database import ResultsStore, curve_label, setting_key

    store = ResultsStore(path)
    activations = store.activations()
    groups: dict[tuple, list[dict]] = {}
    for row in store.measurements():
        if row["activation_ratio"] is not None:
            groups.setdefault((row["run_id"], row["metric"], setting_key(row["setting"])), []).append(row)
    curves = []
    for (run_id, metric, setting), rows in groups.items():
        name = run_id if len(groups) == 1 else curve_label(run_id, metric, setting)
        meta = {"source": str(store.path), "run": run_id, "metric": metric, "setting": setting}
        curves.append(Curve([r["tokens"] for r in rows], [r["activation_ratio"] for r in rows], name,
                            activations.get(run_id), meta))
    return curves


def _sniff_sqlite(path: Path, head: bytes) -> bool:
    return head.startswith(b"SQLite format 3")


# Sniffers are tried in this order: the exact SQLite magic before the permissive CSV guess.
register_reader(Reader("json", (".json",), _load_json, _sniff_json))
register_reader(Reader("sqlite", (".sqlite", ".db"), store_curves, _sniff_sqlite))
register_reader(Reader("csv", (".csv", ".tsv"), _load_csv, _sniff_csv))


def find_reader(path: Path) -> Reader:
    """The reader for ``path``: by suffix first, then by sniffing its first bytes."""
    for reader in READERS.values():
        if path.suffix.lower() in reader.suffixes:
            return reader
    try:
        head = path.read_bytes()[:2048]
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err})") from None
    for reader in READERS.values():
        if reader.sniff and reader.sniff(path, head):
            return reader
    raise DataError(f"{path}: unknown format (known: {', '.join(READERS.names())}); use .json or .csv")


def read_curves(path: str | Path) -> list[Curve]:
    """Every curve in a file (paper JSON, JSON records, CSV, or any registered reader)."""
    p = Path(path)
    if p.is_dir() and (p / STORE_FILENAME).is_file():
        p = p / STORE_FILENAME
    if not p.exists():
        raise DataError(f"{p}: no such file")
    curves = find_reader(p).load(p)
    if not curves:
        raise DataError(f"{p}: no curves found")
    return curves


def read_curve(path: str | Path) -> Curve:
    """The single curve in a file (DataError if it holds several)."""
    curves = read_curves(path)
    if len(curves) != 1:
        raise DataError(f"{path}: holds {len(curves)} curves ({', '.join(c.name for c in curves)}); pick one")
    return curves[0]
