"""Results store: an embedded SQLite database in a run directory (``RUN_DIR/results.sqlite``).

One row per run, per checkpoint and per (run, checkpoint, metric, setting) measurement (headline value,
activation ratio, the full result as JSON); re-recording a key replaces it. Concurrent writers (trainer,
``track``) share it in WAL mode, each write one short ``BEGIN IMMEDIATE`` transaction, retried (WAL needs a
local filesystem). A store this process cannot write opens ``immutable``, read-only. Work is shared
through claims: a process claims a key before measuring it and others skip it; a claim whose process is
dead (same host) or older than ``CLAIM_TTL_S`` is taken over."""

from __future__ import annotations

import csv
import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sparsinglaw.errors import DataError
from sparsinglaw.fileio import atomic_write_json, atomic_write_text
from sparsinglaw.provenance import stamp

FILENAME = "results.sqlite"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, created TEXT NOT NULL, fingerprint TEXT, config TEXT NOT NULL,
    provenance TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (
    run_id TEXT NOT NULL, checkpoint TEXT NOT NULL, step INTEGER, tokens INTEGER NOT NULL, path TEXT,
    created TEXT NOT NULL, PRIMARY KEY (run_id, checkpoint));
CREATE TABLE IF NOT EXISTS measurements (
    run_id TEXT NOT NULL, checkpoint TEXT NOT NULL, tokens INTEGER NOT NULL, metric TEXT NOT NULL,
    setting TEXT NOT NULL, value REAL, activation_ratio REAL, result TEXT, provenance TEXT NOT NULL,
    created TEXT NOT NULL, PRIMARY KEY (run_id, checkpoint, metric, setting));
CREATE INDEX IF NOT EXISTS measurements_by_metric ON measurements (metric, setting, run_id, tokens);
CREATE TABLE IF NOT EXISTS claims (
    run_id TEXT NOT NULL, checkpoint TEXT NOT NULL, metric TEXT NOT NULL, setting TEXT NOT NULL,
    pid INTEGER NOT NULL, host TEXT NOT NULL, claimed REAL NOT NULL,
    PRIMARY KEY (run_id, checkpoint, metric, setting));
"""
CLAIM_TTL_S = 6 * 3600.0  # a claim from another host older than this is presumed abandoned

COLUMNS = ("run_id", "checkpoint", "tokens", "metric", "setting", "value", "activation_ratio", "created")


def setting_key(setting: dict[str, Any] | None) -> str:
    """A canonical text form of a metric setting (sorted JSON), the ``setting`` column."""
    return json.dumps(setting or {}, sort_keys=True, separators=(",", ":"))


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _retry_locked(action, attempts: int = 20):
    """``action()``, retried with growing sleeps while SQLite reports the database locked (some lock
    requests fail at once instead of waiting out the busy timeout)."""
    for attempt in range(attempts):
        try:
            return action()
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


def _use_wal(db: sqlite3.Connection) -> None:
    """Switch to WAL (persistent: later connections inherit it). Switching needs an exclusive lock that
    SQLite does not wait for, so processes opening a new store at once saw "database is locked" (10 of 160
    opens with 4 processes starting together): retried, and skipped when the file is WAL already."""
    def switch() -> None:
        if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            db.execute("PRAGMA journal_mode = WAL")

    _retry_locked(switch)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def _claim_is_stale(row: sqlite3.Row, now: float, ttl: float) -> bool:
    """A claim no live process holds: its pid is dead on this host, or it is older than ``ttl``."""
    if row["host"] == socket.gethostname() and not _process_alive(int(row["pid"])):
        return True
    return now - float(row["claimed"]) > ttl


def _writable(folder: Path) -> bool:
    """Whether files can be created in ``folder``. ``os.access`` answers for the process's permissions and
    for read-only mounts (EROFS, even for root), without touching the directory."""
    return os.access(folder, os.W_OK | os.X_OK)


def _read_only_uri(path: Path) -> str:
    """The SQLite URI opening ``path`` read-only: ``mode=ro`` when its WAL side files exist (SQLite reads them
    without writing), else ``immutable=1`` (a cleanly closed store: everything is in the main file)."""
    side_files = Path(f"{path}-wal").exists() and Path(f"{path}-shm").exists()
    return f"{path.absolute().as_uri()}?{'mode=ro' if side_files else 'immutable=1'}"


def store_path(path: str | Path) -> Path:
    """The database file of ``path``: ``path/results.sqlite`` for a directory (or a name without suffix)."""
    path = Path(path)
    return path / FILENAME if path.is_dir() or not path.suffix else path


def opens_read_only(path: str | Path) -> bool:
    """Whether ``ResultsStore(path)`` opens read-only: the store exists in a place this process cannot write."""
    file = store_path(path)
    return file.is_file() and not (_writable(file.parent) and os.access(file, os.W_OK))


class ResultsStore:
    """A results database; ``ResultsStore(run_dir)`` opens ``RUN_DIR/results.sqlite`` (created if needed), or
    opens it read-only when it exists in a directory this process cannot write (``read_only``)."""

    def __init__(self, path: str | Path, *, timeout: float = 60.0):
        self.path = store_path(path)
        self.timeout = timeout
        self.read_only = opens_read_only(self.path)
        if not self.read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._init_schema()

    def _connect(self) -> sqlite3.Connection:
        if self.read_only:
            db = sqlite3.connect(_read_only_uri(self.path), uri=True, timeout=self.timeout, isolation_level=None)
        else:
            db = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
        return db

    def _init_schema(self) -> None:
        db = self._connect()
        try:
            _use_wal(db)
            with self._write(db) as tx:
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    tx.execute(statement)
                tx.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        finally:
            db.close()

    @contextmanager
    def _write(self, db: sqlite3.Connection | None = None) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken with BEGIN IMMEDIATE so writers queue on the lock instead of
        deadlocking on a read-to-write upgrade; retried while another writer holds it past the timeout."""
        if self.read_only:
            raise DataError(f"{self.path.parent} is read-only: this records results in {self.path.name}; copy the "
                            f"directory somewhere writable (cp -r) and run the command on the copy")
        own = db is None
        db = db or self._connect()
        try:
            _retry_locked(lambda: db.execute("BEGIN IMMEDIATE"))
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                # An interrupt (Ctrl-C, a study stopping) can land after COMMIT went through: then there is
                # nothing to roll back, and ROLLBACK would replace the interrupt with an OperationalError.
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        finally:
            if own:
                db.close()

    def _read(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        db = self._connect()
        try:
            return db.execute(sql, params).fetchall()
        finally:
            db.close()

    # ---- writing ----
    def add_run(self, run_id: str, config: dict[str, Any], *, fingerprint: str | None = None) -> None:
        """Record a run (idempotent: the first record of a run id is kept)."""
        with self._write() as db:
            db.execute("INSERT OR IGNORE INTO runs VALUES (?, ?, ?, ?, ?)",
                       (run_id, _now(), fingerprint, json.dumps(config), json.dumps(stamp(config))))

    def add_checkpoint(self, run_id: str, checkpoint: str, *, step: int | None, tokens: int,
                       path: str | None = None) -> None:
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?, ?, ?, ?)",
                       (run_id, checkpoint, step, int(tokens), path, _now()))

    def record(self, run_id: str, checkpoint: str, tokens: int, metric: str, *, setting: dict | None = None,
               value: float | None = None, activation_ratio: float | None = None,
               result: dict[str, Any] | None = None, config: dict[str, Any] | None = None) -> None:
        """Store one measurement (replacing an earlier one with the same key)."""
        prov = (result or {}).get("provenance") or stamp(config)
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO measurements VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, checkpoint, int(tokens), metric, setting_key(setting),
                 None if value is None else float(value),
                 None if activation_ratio is None else float(activation_ratio),
                 None if result is None else json.dumps(result, default=str), json.dumps(prov, default=str), _now()),
            )

    # ---- claims: sharing work between processes ----
    def claim(self, run_id: str, checkpoint: str, metric: str, setting: dict | None = None, *,
              ttl: float = CLAIM_TTL_S) -> bool:
        """True if this process may measure the key: not measured yet, and unclaimed, claimed by this process,
        or claimed by a process that is gone (dead pid on this host, or older than ``ttl`` seconds). The check
        and the claim are one transaction, so of two processes asking at once exactly one gets True."""
        key = (run_id, checkpoint, metric, setting_key(setting))
        me, host, now = os.getpid(), socket.gethostname(), time.time()
        with self._write() as db:
            where = "run_id=? AND checkpoint=? AND metric=? AND setting=?"
            if db.execute(f"SELECT 1 FROM measurements WHERE {where}", key).fetchone():
                return False
            row = db.execute(f"SELECT pid, host, claimed FROM claims WHERE {where}", key).fetchone()
            if row is not None and not (row["pid"] == me and row["host"] == host) and not _claim_is_stale(row, now, ttl):
                return False
            db.execute("INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?, ?, ?, ?)", (*key, me, host, now))
        return True

    def release(self, run_id: str, checkpoint: str, metric: str, setting: dict | None = None) -> None:
        """Drop this process's claim on the key (after measuring it, or giving up)."""
        with self._write() as db:
            db.execute("DELETE FROM claims WHERE run_id=? AND checkpoint=? AND metric=? AND setting=? AND pid=? "
                       "AND host=?", (run_id, checkpoint, metric, setting_key(setting), os.getpid(),
                                      socket.gethostname()))

    def claims(self) -> list[dict[str, Any]]:
        """Open claims (rows of run_id, checkpoint, metric, setting, pid, host, claimed)."""
        return [dict(r) for r in self._read("SELECT * FROM claims ORDER BY run_id, checkpoint")]

    # ---- reading ----
    def has(self, run_id: str, checkpoint: str, metric: str, setting: dict | None = None) -> bool:
        rows = self._read("SELECT 1 FROM measurements WHERE run_id=? AND checkpoint=? AND metric=? AND setting=?",
                          (run_id, checkpoint, metric, setting_key(setting)))
        return bool(rows)

    def runs(self) -> list[dict[str, Any]]:
        return [{**dict(r), "config": json.loads(r["config"]), "provenance": json.loads(r["provenance"])}
                for r in self._read("SELECT * FROM runs ORDER BY created, run_id")]

    def activations(self) -> dict[str, str | None]:
        """Each run's activation function (from its training config), for choosing the law to fit."""
        return {r["run_id"]: (r["config"].get("model") or {}).get("activation") for r in self.runs()}

    def checkpoints(self, run_id: str | None = None) -> list[dict[str, Any]]:
        sql, params = "SELECT * FROM checkpoints", ()
        if run_id is not None:
            sql, params = sql + " WHERE run_id=?", (run_id,)
        return [dict(r) for r in self._read(sql + " ORDER BY run_id, tokens", params)]

    def measurements(self, run_id: str | None = None, metric: str | None = None,
                     setting: dict | None = None, *, with_result: bool = False) -> list[dict[str, Any]]:
        """Measurement rows (oldest tokens first), optionally filtered."""
        where, params = [], []
        for column, value in (("run_id", run_id), ("metric", metric)):
            if value is not None:
                where.append(f"{column}=?")
                params.append(value)
        if setting is not None:
            where.append("setting=?")
            params.append(setting_key(setting))
        columns = "*" if with_result else ", ".join(COLUMNS)
        sql = f"SELECT {columns} FROM measurements" + (f" WHERE {' AND '.join(where)}" if where else "")
        rows = [dict(r) for r in self._read(sql + " ORDER BY run_id, metric, setting, tokens", tuple(params))]
        for row in rows:
            row["setting"] = json.loads(row["setting"])
            if with_result:
                row["result"] = json.loads(row["result"]) if row["result"] else None
                row["provenance"] = json.loads(row["provenance"])
        return rows

    def points(self, run_id: str | None = None, metric: str = "pplp",
               setting: dict | None = None) -> list[tuple[int, float]]:
        """(tokens, activation_ratio) points, ordered by tokens, for the law-fitting code."""
        rows = self.measurements(run_id, metric, setting)
        settings = {setting_key(r["setting"]) for r in rows}
        runs = {r["run_id"] for r in rows}
        if len(settings) > 1 or len(runs) > 1:
            raise DataError(f"{self.path}: {metric} was measured at {len(settings)} settings in {len(runs)} runs; "
                            "pass run_id and setting to pick one curve")
        return [(r["tokens"], r["activation_ratio"]) for r in rows if r["activation_ratio"] is not None]

    # ---- export ----
    def export_csv(self, path: str | Path, **filters) -> Path:
        rows = self.measurements(**filters)
        lines: list[str] = []

        class _Sink:
            def write(self, text: str) -> None:
                lines.append(text)

        writer = csv.DictWriter(_Sink(), fieldnames=list(COLUMNS), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "setting": setting_key(row["setting"])})
        return atomic_write_text(path, "".join(lines))

    def export_json(self, path: str | Path, *, points_only: bool = False, **filters) -> Path:
        """``{"records": [...], "runs": [...]}``. Each record carries a ``curve`` label (run:metric:setting);
        with ``points_only`` (rows with an activation ratio) the file is readable by ``sparsinglaw fit``."""
        records = self.measurements(with_result=True, **filters)
        if points_only:
            records = [r for r in records if r["activation_ratio"] is not None]
        activations = self.activations()
        for r in records:
            r["curve"] = curve_label(r["run_id"], r["metric"], r["setting"])
            r["activation"] = activations.get(r["run_id"])
        return atomic_write_json(path, {"schema": "sparsinglaw.store.database/1", "runs": self.runs(), "records": records})


def curve_label(run_id: str, metric: str, setting: dict | str) -> str:
    text = setting if isinstance(setting, str) else setting_key(setting)
    return f"{run_id}:{metric}:{text}"

