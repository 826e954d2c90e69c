"""Call records in PostgreSQL (``TELEPHONY_DATABASE_URL``), shared by replicas.

psycopg 3 with its async pool, opened on first use. The app creates and migrates
its own schema: ``telephony_schema`` lists the migrations applied, and each
process applies the missing ones under a session advisory lock, so replicas
starting together apply each migration exactly once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .record import CallQuery, CallRecord
from .sqlite import columns, where

try:
    from psycopg.types.json import Jsonb
    from psycopg_pool import AsyncConnectionPool, PoolTimeout
except ImportError as exc:  # the optional extra is not installed
    raise ConfigError("TELEPHONY_DATABASE_URL needs the PostgreSQL driver: pip install 'telephony[postgres]'") from exc

if TYPE_CHECKING:
    from psycopg import AsyncConnection

__all__ = ["MIGRATIONS", "PostgresCallStore"]

#: The advisory lock key migrations run under (any constant; "tele" in ASCII).
MIGRATION_LOCK = 0x74656C65

#: (version, statements), in order. Never edit a released one: add the next.
MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (
        1,
        (
            "CREATE TABLE telephony_calls (call_sid text PRIMARY KEY, started_at double precision NOT NULL, "
            "ended_at double precision, outcome text, from_number text, to_number text, record jsonb NOT NULL)",
            "CREATE INDEX telephony_calls_started ON telephony_calls (started_at DESC, call_sid DESC)",
            "CREATE INDEX telephony_calls_from ON telephony_calls (from_number)",
            "CREATE INDEX telephony_calls_to ON telephony_calls (to_number)",
        ),
    ),
)


async def migrate(conn: AsyncConnection[Any]) -> list[int]:
    """Apply the missing migrations (``conn`` in autocommit); the versions applied."""
    applied: list[int] = []
    await conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS telephony_schema "
            "(version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cur = await conn.execute("SELECT coalesce(max(version), 0) FROM telephony_schema")
        row = await cur.fetchone()
        current = int(row[0]) if row else 0
        for version, statements in MIGRATIONS:
            if version <= current:
                continue
            async with conn.transaction():
                for statement in statements:
                    await conn.execute(statement)
                await conn.execute("INSERT INTO telephony_schema (version) VALUES (%s)", (version,))
            applied.append(version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    return applied


class PostgresCallStore:
    """One row per call in ``telephony_calls``; the record as ``jsonb``, the columns
    listings filter on beside it. ``timeout_s`` bounds each wait for a connection:
    with the database down, an operation fails after that long (the caller retries
    writes, see ``io/observe.py``); the pool keeps reconnecting in the background."""

    def __init__(self, url: str, *, max_size: int = 4, timeout_s: float = 5.0) -> None:
        self.url = url
        self.max_size = max_size
        self.timeout_s = timeout_s
        self._pool: AsyncConnectionPool[Any] | None = None
        self._opening = asyncio.Lock()

    async def _ready(self) -> AsyncConnectionPool[Any]:
        if self._pool is None:
            async with self._opening:
                if self._pool is None:
                    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
                        self.url,
                        min_size=1,
                        max_size=self.max_size,
                        timeout=self.timeout_s,
                        kwargs={"autocommit": True},
                        open=False,
                        name="telephony-records",
                    )
                    await pool.open(wait=False)
                    try:
                        async with pool.connection() as conn:
                            await migrate(conn)
                    except BaseException:
                        await pool.close()
                        raise
                    self._pool = pool
        return self._pool

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        """A pooled connection. No connection within ``timeout_s`` (the database is
        down or unreachable): the pool is dropped, and the next operation starts a
        fresh one (and migrates, if the database came back empty)."""
        pool = await self._ready()
        try:
            async with pool.connection() as conn:
                yield conn
        except PoolTimeout:
            if self._pool is pool:
                self._pool = None
                await pool.close()
            raise

    async def save(self, record: CallRecord) -> None:
        async with self._connection() as conn:
            await conn.execute(
                "INSERT INTO telephony_calls VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (call_sid) DO UPDATE "
                "SET started_at = EXCLUDED.started_at, ended_at = EXCLUDED.ended_at, outcome = EXCLUDED.outcome, "
                "from_number = EXCLUDED.from_number, to_number = EXCLUDED.to_number, record = EXCLUDED.record",
                (*columns(record), Jsonb(record.to_dict())),
            )

    async def get(self, call_sid: str) -> CallRecord | None:
        async with self._connection() as conn:
            cur = await conn.execute("SELECT record FROM telephony_calls WHERE call_sid = %s", (call_sid,))
            row = await cur.fetchone()
        return CallRecord.from_dict(row[0]) if row else None

    async def list(self, query: CallQuery = CallQuery()) -> list[CallRecord]:  # noqa: B008
        tail, args = where(query, "%s")
        async with self._connection() as conn:
            cur = await conn.execute("SELECT record FROM telephony_calls" + tail, args)
            rows = await cur.fetchall()
        return [CallRecord.from_dict(r[0]) for r in rows]

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
