"""Writing finished calls' records to the store, off the audio path.

One writer task saves the queued records in order. While the store fails (a
database outage, a full disk) the records wait, at most ``buffer`` of them (the
oldest is dropped first) and each at most ``retry_s`` (then dropped), retried
with backoff; every drop and failure is logged and counted, never raised, and
the last error is kept for ``/healthz``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, OrderedDict

from ..logs import log_event
from ..records import CallRecord, CallStore

__all__ = ["AFTER_TIMEOUT_S", "RecordWriter"]

#: the longest a record waits for what must finish before it (its recording's last write)
AFTER_TIMEOUT_S = 10.0

log = logging.getLogger("telephony.call")


class RecordWriter:
    def __init__(self, store: CallStore | None, buffer: int, retry_s: float, counters: Counter[str]) -> None:
        """``counters``: the app's counters (records dropped, failed saves)."""
        self.store = store
        self.buffer = buffer
        self.retry_s = retry_s
        self.counters = counters
        #: the last record write failed with this (cleared by a success)
        self.error: str | None = None
        # Records waiting to be written, oldest first: call_sid -> (record, when queued).
        self._pending: OrderedDict[str, tuple[CallRecord, float]] = OrderedDict()
        # Records held until what must finish first has (their recording's last write).
        self._held: dict[str, tuple[CallRecord, asyncio.TimerHandle]] = {}
        self._writer: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    def save(self, record: CallRecord, after: asyncio.Future[None] | None = None) -> None:
        """Queue a finished call's record (see the module docstring). With ``after``
        (e.g. its recording's last write) the record is held, without holding up any
        other, until that is done or ``AFTER_TIMEOUT_S`` after this call (then written
        anyway, and logged)."""
        if self.store is None:
            return
        if after is None or after.done():
            self._queue(record)
            return
        sid = record.call_sid
        loop = asyncio.get_running_loop()
        self._idle.clear()  # flush() waits for held records too
        self._held[sid] = (record, loop.call_later(AFTER_TIMEOUT_S, self._release, record, True))
        after.add_done_callback(lambda _f: self._release(record, False))

    def _release(self, record: CallRecord, late: bool) -> None:
        held = self._held.pop(record.call_sid, None)
        if held is None or held[0] is not record:
            if held is not None:
                self._held[record.call_sid] = held  # a newer record of that call waits
            return  # released already (the other way)
        held[1].cancel()
        if late:
            log_event(
                log, "records.recording_late", logging.WARNING, call_sid=record.call_sid, waited_s=AFTER_TIMEOUT_S
            )
        self._queue(record)

    def _queue(self, record: CallRecord) -> None:
        self._pending[record.call_sid] = (record, time.monotonic())
        self._pending.move_to_end(record.call_sid)
        while len(self._pending) > self.buffer:
            sid, _ = self._pending.popitem(last=False)
            self.counters["records_dropped"] += 1
            log_event(log, "records.dropped", logging.ERROR, call_sid=sid, reason="buffer full")
        self._idle.clear()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_pending())

    async def _write_pending(self) -> None:
        store = self.store
        assert store is not None
        backoff = 0.0
        failing = False
        try:
            while self._pending:
                sid, (record, queued) = next(iter(self._pending.items()))
                if time.monotonic() - queued > self.retry_s:
                    del self._pending[sid]
                    self.counters["records_dropped"] += 1
                    log_event(log, "records.dropped", logging.ERROR, call_sid=sid, reason="retried too long")
                    continue
                try:
                    await store.save(record)
                except Exception as exc:
                    self.error = f"{type(exc).__name__}: {exc}"  # /healthz says so
                    self.counters["records_save_failed"] += 1
                    backoff = min(30.0, max(0.5, backoff * 2))
                    log_event(
                        log,
                        "records.save_failed",
                        logging.ERROR,
                        call_sid=sid,
                        error=f"{type(exc).__name__}: {exc}",
                        pending=len(self._pending),
                        retry_in_s=backoff,
                    )
                    failing = True
                    await asyncio.sleep(backoff)
                    continue
                self.error = None
                if self._pending.get(sid, (None,))[0] is record:  # not replaced meanwhile
                    del self._pending[sid]
                log_event(log, "records.saved", logging.DEBUG, call_sid=sid)
                if failing:
                    failing, backoff = False, 0.0
                    log_event(log, "records.save_recovered", call_sid=sid, pending=len(self._pending))
        finally:
            if not self._pending and not self._held:
                self._idle.set()

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until every finished call's record is written (or ``timeout``);
        whether none is left waiting."""
        if self._pending or self._held:
            try:
                await asyncio.wait_for(self._idle.wait(), timeout)
            except TimeoutError:
                pass
        return not self._pending and not self._held

    async def close(self, timeout: float = 5.0) -> None:
        """At shutdown: write what waits (for up to ``timeout``), then close the
        store; records still unwritten are logged as lost."""
        if not await self.flush(timeout):
            for record, _timer in list(self._held.values()):
                self._release(record, True)  # written as they are rather than not at all
            await self.flush(1.0)
            for sid in self._pending:
                log_event(log, "records.dropped", logging.ERROR, call_sid=sid, reason="server shutting down")
            self._pending.clear()
        if self._writer is not None:
            self._writer.cancel()
        if self.store is not None:
            try:
                await self.store.close()
            except Exception as exc:
                log_event(log, "records.close_failed", logging.WARNING, error=f"{type(exc).__name__}: {exc}")
