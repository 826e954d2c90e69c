"""Call records: who called, what was said, which tools ran, how it ended.

``CallRecorder`` builds one record per call from the state machine's notices
and tool results
(no per-frame work); ``CallStore`` is the storage interface, and
``SqliteCallStore`` the default (a file path setting, created on first use).
Another database plugs in by implementing ``CallStore``'s three methods.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .call.events import BargeIn, CallEnded, Event, KeyPressed, ResponseFinished, RunTool, Transcript

if TYPE_CHECKING:
    from .tools.registry import ToolResult

__all__ = ["CallRecord", "CallRecorder", "CallStore", "SqliteCallStore"]


@dataclass
class CallRecord:
    call_sid: str
    from_number: str | None = None
    to_number: str | None = None
    started_at: float = 0.0  # unix time
    ended_at: float | None = None
    duration_s: float | None = None
    outcome: str | None = None  # completed | transferred | hung_up_by_agent | failed
    reason: str | None = None
    apologized: bool = False  # the bridge gave up and the caller is told so (/stream-ended)
    transcript: list[dict[str, Any]] = field(default_factory=list)  # {t, role, text}, in order
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    barge_ins: list[dict[str, Any]] = field(default_factory=list)
    dtmf: str = ""
    usage: dict[str, int] = field(
        default_factory=lambda: {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0, "responses": 0}
    )
    parameters: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CallRecord:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


class CallRecorder:
    """Builds one call's ``CallRecord`` from what the call reports (its notices,
    the tools it ran). Times are the loop's monotonic clock; the record keeps
    seconds since the call started, and unix time for its start and end."""

    def __init__(self, call_sid: str, now_mono: float, parameters: dict[str, str] | None = None) -> None:
        params = parameters or {}
        self.record = CallRecord(
            call_sid, params.get("From"), params.get("To"), started_at=time.time(), parameters=dict(params)
        )
        self._started_mono = now_mono
        self._calls: dict[str, dict[str, Any]] = {}

    def _t(self, mono: float) -> float:
        return round(mono - self._started_mono, 3)

    def observe(self, event: Event, now: float) -> None:
        r = self.record
        match event:
            case Transcript():
                r.transcript.append({"t": self._t(event.at), "role": event.role, "text": event.text})
                r.transcript.sort(key=lambda e: e["t"])
            case RunTool():
                call = {
                    "t": self._t(now),
                    "call_id": event.call_id,
                    "name": event.name,
                    "arguments": event.arguments,
                    "ok": None,
                    "result": None,
                    "error": None,
                    "duration_ms": None,
                }
                self._calls[event.call_id] = call
                r.tool_calls.append(call)
            case BargeIn():
                r.barge_ins.append({"t": self._t(now), "truncated": [asdict(t) for t in event.truncated]})
            case KeyPressed():
                r.dtmf += event.digit
            case ResponseFinished():
                usage = event.usage or {}
                r.usage["responses"] += 1
                for key in ("input_tokens", "output_tokens", "total_tokens"):
                    value = usage.get(key)
                    if isinstance(value, int):
                        r.usage[key] += value
            case CallEnded():
                r.outcome, r.reason = event.outcome, event.reason
                r.apologized = event.apologize
                r.ended_at = time.time()
                r.duration_s = round(now - self._started_mono, 3)
            case _:
                pass

    def tool_finished(self, result: ToolResult) -> None:
        call = self._calls.get(result.call_id)
        if call is not None:
            call.update(
                ok=result.ok,
                result=result.output if result.ok else None,
                error=result.error,
                duration_ms=round(1000 * result.duration_s, 1),
            )


class CallStore(Protocol):
    def save(self, record: CallRecord) -> None: ...

    def list(self, limit: int = 50) -> list[CallRecord]: ...

    def get(self, call_sid: str) -> CallRecord | None: ...


class SqliteCallStore:
    """One row per call; the record's lists are stored as JSON. Thread-safe;
    the server calls it from a worker thread, once per call. Several processes
    (``serve --workers``) may share one file (WAL mode, waits on locks)."""

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
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS calls (call_sid TEXT PRIMARY KEY, started_at REAL NOT NULL, "
                    "ended_at REAL, outcome TEXT, from_number TEXT, to_number TEXT, record TEXT NOT NULL)"
                )
                conn.execute("CREATE INDEX IF NOT EXISTS calls_started ON calls (started_at DESC)")
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _run(self, op: Any) -> Any:
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

    def save(self, record: CallRecord) -> None:
        row = (
            record.call_sid,
            record.started_at,
            record.ended_at,
            record.outcome,
            record.from_number,
            record.to_number,
            json.dumps(record.to_dict(), ensure_ascii=False),
        )
        self._run(lambda db: db.execute("INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?, ?, ?, ?)", row))

    def list(self, limit: int = 50) -> list[CallRecord]:
        rows = self._run(
            lambda db: db.execute("SELECT record FROM calls ORDER BY started_at DESC LIMIT ?", (limit,)).fetchall()
        )
        return [CallRecord.from_dict(json.loads(r[0])) for r in rows]

    def get(self, call_sid: str) -> CallRecord | None:
        row = self._run(lambda db: db.execute("SELECT record FROM calls WHERE call_sid = ?", (call_sid,)).fetchone())
        return CallRecord.from_dict(json.loads(row[0])) if row else None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
