"""The default store: one SQLite file (``TELEPHONY_RECORDS_PATH``)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .record import CallQuery, CallRecord

__all__ = ["SqliteCallStore"]

T = TypeVar("T")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS calls (call_sid TEXT PRIMARY KEY, started_at REAL NOT NULL, "
    "ended_at REAL, outcome TEXT, from_number TEXT, to_number TEXT, record TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS calls_started ON calls (started_at DESC)",
    "CREATE INDEX IF NOT EXISTS calls_from ON calls (from_number)",
    "CREATE INDEX IF NOT EXISTS calls_to ON calls (to_number)",
)


def columns(record: CallRecord) -> tuple[Any, ...]:
    """The indexed columns of a record's row, in table order (the whole record, as
    JSON, is the last column: each store encodes it its own way)."""
    return (record.call_sid, record.started_at, record.ended_at, record.outcome, record.from_number, record.to_number)


def where(query: CallQuery, mark: str) -> tuple[str, list[Any]]:
    """The WHERE/ORDER/LIMIT tail of a listing and its parameters (``mark`` is the
    placeholder: ``?`` for SQLite, ``%s`` for PostgreSQL)."""
    clauses: list[str] = []
    args: list[Any] = []
    if query.number is not None:
        clauses.append(f"(from_number = {mark} OR to_number = {mark})")
        args += [query.number, query.number]
    if query.outcome is not None:
        clauses.append(f"outcome = {mark}")
        args.append(query.outcome)
    if query.after is not None:
        clauses.append(f"started_at >= {mark}")
        args.append(query.after)
    if query.before is not None:
        clauses.append(f"started_at < {mark}")
        args.append(query.before)
    sql = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    sql += f" ORDER BY started_at DESC, call_sid DESC LIMIT {mark} OFFSET {mark}"
    return sql, [*args, max(0, query.limit), max(0, query.offset)]


class SqliteCallStore:
    """One row per call; the record's lists are stored as JSON. The file's work
    runs in a thread (``asyncio.to_thread``) under one lock, so the event loop
    never waits on the disk. Several processes (``serve --workers``) may share one
    file (WAL mode, waits on locks); replicas on several machines may not: use
    PostgreSQL."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            # Autocommit: each statement is its own transaction, so a write never has to
            # upgrade a read lock (which SQLite refuses at once when another process
            # writes); with the busy timeout, workers sharing the file wait their turn.
            conn = sqlite3.connect(self.path, check_same_thread=False, timeout=10.0, isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                for statement in _SCHEMA:
                    conn.execute(statement)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _run(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """``op(db)`` under the lock. A new file being set up by another process at
        the same moment answers "database is locked" at once, without waiting (the
        switch to WAL takes the whole file): try again for up to ~2 s."""
        with self._lock:
            for attempt in range(40):
                try:
                    return op(self._db())
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or attempt == 39:
                        raise
                time.sleep(0.05)
        raise AssertionError("unreachable")

    def save_now(self, record: CallRecord) -> None:
        row = (*columns(record), json.dumps(record.to_dict(), ensure_ascii=False))
        self._run(lambda db: db.execute("INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?, ?, ?, ?)", row))

    def get_now(self, call_sid: str) -> CallRecord | None:
        row = self._run(lambda db: db.execute("SELECT record FROM calls WHERE call_sid = ?", (call_sid,)).fetchone())
        return CallRecord.from_dict(json.loads(row[0])) if row else None

    def list_now(self, query: CallQuery) -> list[CallRecord]:
        tail, args = where(query, "?")
        rows = self._run(lambda db: db.execute("SELECT record FROM calls" + tail, args).fetchall())
        return [CallRecord.from_dict(json.loads(r[0])) for r in rows]

    def close_now(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # --- the CallStore interface ----------------------------------------------------------

    async def save(self, record: CallRecord) -> None:
        await asyncio.to_thread(self.save_now, record)

    async def get(self, call_sid: str) -> CallRecord | None:
        return await asyncio.to_thread(self.get_now, call_sid)

    async def list(self, query: CallQuery = CallQuery()) -> list[CallRecord]:  # noqa: B008
        return await asyncio.to_thread(self.list_now, query)

    async def close(self) -> None:
        await asyncio.to_thread(self.close_now)
