"""One suite, both stores: SQLite (a file) and PostgreSQL (a real server started
for the session, see tests/postgres.py) behave identically behind ``CallStore``.
And the observer's writes: bounded, retried, logged while the store fails."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from telephony.config import Settings
from telephony.io.observe import CallObserver
from telephony.records import CallQuery, CallRecord, CallStore, SqliteCallStore, open_store

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[CallStore]:
    if request.param == "sqlite":
        opened: CallStore | None = SqliteCallStore(tmp_path / "calls.db")
    else:
        url = request.getfixturevalue("postgres_url")
        opened = open_store(Settings(_env_file=None, database_url=url))
    assert opened is not None
    yield opened
    await opened.close()


def _record(sid: str, started: float, **kw: object) -> CallRecord:
    return CallRecord(sid, started_at=started, **kw)  # type: ignore[arg-type]


async def test_a_saved_record_reads_back_whole(store: CallStore) -> None:
    record = CallRecord(
        "CA1",
        "+15550001111",
        "+15550002222",
        started_at=1_700_000_000.25,
        ended_at=1_700_000_042.5,
        duration_s=42.25,
        outcome="failed",
        reason="realtime unavailable",
        apologized=True,
        transcript=[{"t": 0.5, "role": "caller", "text": "Grüß Gott, ça va? 你好"}],
        tool_calls=[{"t": 1.0, "call_id": "c1", "name": "weather", "arguments": '{"city": "Oslo"}', "ok": True}],
        barge_ins=[{"t": 2.0, "truncated": [{"item_id": "i1", "audio_end_ms": 640}]}],
        dtmf="12#",
        usage={"input_tokens": 10, "output_tokens": 20, "total_tokens": 30, "responses": 2},
        parameters={"From": "+15550001111", "lang": "de"},
    )
    await store.save(record)
    assert await store.get("CA1") == record
    assert await store.get("CAnope") is None


async def test_save_replaces_the_record_stored_under_the_same_call_sid(store: CallStore) -> None:
    await store.save(_record("CA1", 10.0, from_number="+1555", transcript=[{"t": 0, "role": "agent", "text": "a"}]))
    await store.save(_record("CA1", 20.0, outcome="completed"))
    again = await store.get("CA1")
    assert again == _record("CA1", 20.0, outcome="completed")  # whole, not merged
    assert [r.call_sid for r in await store.list()] == ["CA1"]
    assert await store.list(CallQuery(number="+1555")) == []  # the filter columns follow


async def test_listing_filters_and_pages_newest_first(store: CallStore) -> None:
    records = [
        _record("CA1", 100.0, from_number="+1001", to_number="+2000", outcome="completed"),
        _record("CA2", 200.0, from_number="+1002", to_number="+2000", outcome="failed"),
        _record("CA3", 300.0, from_number="+1001", to_number="+2000", outcome="completed"),
        _record("CA4", 300.0, from_number="+2000", to_number="+1003", outcome="transferred"),
        _record("CA5", 500.0, from_number="+1005", to_number="+2000"),  # in progress
    ]
    for r in records:
        await store.save(r)

    async def sids(**kw: object) -> list[str]:
        return [r.call_sid for r in await store.list(CallQuery(**kw))]  # type: ignore[arg-type]

    assert await sids() == ["CA5", "CA4", "CA3", "CA2", "CA1"]  # ties on started_at: higher CallSid first
    assert await sids(number="+1001") == ["CA3", "CA1"]
    assert await sids(number="+2000") == ["CA5", "CA4", "CA3", "CA2", "CA1"]  # from or to
    assert await sids(outcome="completed") == ["CA3", "CA1"]
    assert await sids(after=200.0) == ["CA5", "CA4", "CA3", "CA2"]  # inclusive
    assert await sids(before=300.0) == ["CA2", "CA1"]  # exclusive
    assert await sids(after=150.0, before=400.0, number="+2000", outcome="completed") == ["CA3"]
    pages = [await sids(limit=2, offset=offset) for offset in (0, 2, 4, 6)]
    assert pages == [["CA5", "CA4"], ["CA3", "CA2"], ["CA1"], []]
    assert await sids(limit=0) == []


async def test_a_closed_store_opens_again_on_use(store: CallStore) -> None:
    await store.save(_record("CA1", 1.0))
    await store.close()
    assert (await store.get("CA1")) is not None
    await store.save(_record("CA2", 2.0))
    assert [r.call_sid for r in await store.list()] == ["CA2", "CA1"]


async def test_replicas_starting_together_migrate_the_schema_once(postgres_url: str) -> None:
    import psycopg

    from telephony.records.postgres import MIGRATIONS, PostgresCallStore

    stores = [PostgresCallStore(postgres_url) for _ in range(6)]
    try:
        await asyncio.gather(*(s.save(_record(f"CA{i}", float(i))) for i, s in enumerate(stores)))
        assert len(await stores[0].list()) == 6
    finally:
        await asyncio.gather(*(s.close() for s in stores))
    async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
        cur = await conn.execute("SELECT version FROM telephony_schema ORDER BY version")
        assert [row[0] for row in await cur.fetchall()] == [v for v, _ in MIGRATIONS]


async def test_an_unreachable_database_fails_the_operation_within_its_timeout() -> None:
    from telephony.records.postgres import PostgresCallStore
    from tests.postgres import _free_port

    store = PostgresCallStore(f"postgresql://postgres@127.0.0.1:{_free_port()}/postgres", timeout_s=0.5)
    loop = asyncio.get_running_loop()
    begun = loop.time()
    with pytest.raises(Exception):  # noqa: B017 (the pool's timeout, whatever psycopg names it)
        await store.save(_record("CA1", 1.0))
    assert loop.time() - begun < 5
    await store.close()


# --- the observer's writes while the store fails ----------------------------------------------


class Flaky:
    """A real store that fails every write while ``down``."""

    def __init__(self, inner: CallStore) -> None:
        self.inner = inner
        self.down = True
        self.failed = asyncio.Event()

    async def save(self, record: CallRecord) -> None:
        if self.down:
            self.failed.set()
            raise ConnectionError("database unreachable")
        await self.inner.save(record)

    async def get(self, call_sid: str) -> CallRecord | None:
        return await self.inner.get(call_sid)

    async def list(self, query: CallQuery = CallQuery()) -> list[CallRecord]:  # noqa: B008
        return await self.inner.list(query)

    async def close(self) -> None:
        await self.inner.close()


async def test_an_outage_keeps_records_in_memory_and_writes_them_when_the_store_returns(store, caplog) -> None:
    caplog.set_level(logging.INFO, "telephony")
    flaky = Flaky(store)
    observer = CallObserver(flaky)
    observer.save(_record("CA1", 1.0, outcome="completed"))
    observer.save(_record("CA2", 2.0, outcome="failed", apologized=True))
    await asyncio.wait_for(flaky.failed.wait(), 5)
    assert not await observer.flush_records(timeout=0.05)  # still waiting
    assert await store.list() == []
    flaky.down = False
    assert await observer.flush_records(timeout=10)
    assert [r.call_sid for r in await store.list()] == ["CA2", "CA1"]
    failed = [r for r in caplog.records if r.getMessage() == "records.save_failed"]
    assert failed and failed[0].fields["pending"] == 2  # type: ignore[attr-defined]
    assert any(r.getMessage() == "records.save_recovered" for r in caplog.records)


async def test_records_waiting_on_a_failing_store_are_bounded_in_number_and_age(tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO, "telephony")
    flaky = Flaky(SqliteCallStore(tmp_path / "calls.db"))
    observer = CallObserver(flaky, records_buffer=2, records_retry_s=3600)
    for i in range(3):
        observer.save(_record(f"CA{i}", float(i)))
    dropped = [r.fields for r in caplog.records if r.getMessage() == "records.dropped"]  # type: ignore[attr-defined]
    assert dropped == [{"call_sid": "CA0", "reason": "buffer full"}]
    assert observer.counters["records_dropped"] == 1
    await observer.close(timeout=0.05)  # shutting down with the store still down: the rest is logged as lost
    dropped = [r.fields for r in caplog.records if r.getMessage() == "records.dropped"]  # type: ignore[attr-defined]
    assert [d["call_sid"] for d in dropped] == ["CA0", "CA1", "CA2"]

    aged = CallObserver(Flaky(SqliteCallStore(tmp_path / "other.db")), records_retry_s=0.0)
    aged.save(_record("CA9", 9.0))
    assert await aged.flush_records(timeout=5)  # given up at once: nothing left waiting
    assert aged.counters["records_dropped"] == 1
    await aged.close()


class Down(Flaky):
    """Every operation fails."""

    async def get(self, call_sid: str) -> CallRecord | None:
        raise ConnectionError("database unreachable")

    async def list(self, query: CallQuery = CallQuery()) -> list[CallRecord]:  # noqa: B008
        raise ConnectionError("database unreachable")


async def test_the_records_api_answers_503_while_the_store_is_down(tmp_path, caplog) -> None:
    import httpx

    from telephony.io.app import create_app

    settings = Settings(_env_file=None, openai_api_key="sk-x", api_token="records-token-xyz")
    app = create_app(settings, store=Down(SqliteCallStore(tmp_path / "calls.db")))
    auth = {"Authorization": "Bearer records-token-xyz"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        for path in ("/calls?outcome=failed", "/calls/CA1"):
            r = await http.get(path, headers=auth)
            assert r.status_code == 503 and "database unreachable" in r.json()["error"]
    assert len([r for r in caplog.records if r.getMessage() == "records.read_failed"]) == 2


def test_a_database_url_that_is_not_postgresql_is_refused_by_name() -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TWILIO_", "TELEPHONY_"))}
    env["TELEPHONY_DATABASE_URL"] = "mysql://db.example/calls"
    out = subprocess.run([sys.executable, "-m", "telephony", "calls"], env=env, capture_output=True, text=True)
    assert out.returncode == 2 and "TELEPHONY_DATABASE_URL must be a postgresql:// URL" in out.stderr


class Watched:
    """A store that signals each failed write."""

    def __init__(self, inner: CallStore) -> None:
        self.inner = inner
        self.failed = asyncio.Event()

    async def save(self, record: CallRecord) -> None:
        try:
            await self.inner.save(record)
        except Exception:
            self.failed.set()
            raise

    async def get(self, call_sid: str) -> CallRecord | None:
        return await self.inner.get(call_sid)

    async def list(self, query: CallQuery = CallQuery()) -> list[CallRecord]:  # noqa: B008
        return await self.inner.list(query)

    async def close(self) -> None:
        await self.inner.close()


@pytest.mark.async_timeout(90)
async def test_a_postgresql_server_going_away_and_back_loses_no_record(postgres_bin, caplog) -> None:
    from telephony.records.postgres import PostgresCallStore
    from tests.postgres import throwaway_cluster

    caplog.set_level(logging.INFO, "telephony")
    with throwaway_cluster(postgres_bin) as cluster:  # a server of its own, to stop
        store = Watched(PostgresCallStore(cluster.url, timeout_s=0.5))
        observer = CallObserver(store)
        observer.save(_record("CA1", 1.0, outcome="completed"))
        assert await observer.flush_records(timeout=10)
        await asyncio.to_thread(cluster.stop)

        observer.save(_record("CA2", 2.0, outcome="failed", apologized=True))
        await asyncio.wait_for(store.failed.wait(), 10)
        assert not await observer.apologized("CA3", wait_s=0.1)  # a lookup fails fast, as "no apology"
        await asyncio.to_thread(cluster.start)
        assert await observer.flush_records(timeout=60)
        assert [r.call_sid for r in await store.list()] == ["CA2", "CA1"]
        assert await observer.apologized("CA2")  # found in the database (not run by this observer)
        await observer.close()
    assert any(r.getMessage() == "records.save_recovered" for r in caplog.records)


async def test_a_record_waiting_for_its_recording_holds_up_no_other(tmp_path, caplog, monkeypatch) -> None:
    """A call's record waits for its recording's last write (it names the file), and
    only that record: the others are written meanwhile. One whose recording never
    completes is written anyway after AFTER_TIMEOUT_S, and that is logged."""
    from telephony.io import record_writer

    caplog.set_level(logging.INFO, "telephony")
    store = SqliteCallStore(tmp_path / "calls.db")
    saved = asyncio.Event()

    class Watched(Flaky):
        async def save(self, record: CallRecord) -> None:
            await self.inner.save(record)
            saved.set()

    watched = Watched(store)
    watched.down = False
    observer = CallObserver(watched)
    written = asyncio.get_running_loop().create_future()
    observer.save(_record("CA1", 1.0, recording="CA1.wav"), written)
    observer.save(_record("CA2", 2.0))
    await asyncio.wait_for(saved.wait(), 5)  # CA2 is written though CA1 waits
    assert await store.get("CA2") is not None and await store.get("CA1") is None
    assert not await observer.flush_records(timeout=0.05)  # CA1 still held: flush waits for it
    written.set_result(None)
    assert await observer.flush_records(timeout=5)
    assert (await store.get("CA1")).recording == "CA1.wav"  # type: ignore[union-attr]

    monkeypatch.setattr(record_writer, "AFTER_TIMEOUT_S", 0.1)
    never = asyncio.get_running_loop().create_future()
    observer.save(_record("CA3", 3.0), never)
    assert await observer.flush_records(timeout=5)
    assert await store.get("CA3") is not None
    late = [r.fields for r in caplog.records if r.getMessage() == "records.recording_late"]  # type: ignore[attr-defined]
    assert late == [{"call_sid": "CA3", "waited_s": 0.1}]
    never.cancel()
    await observer.close()
