"""Call records: who called, what was said, which tools ran, how it ended.

``CallRecorder`` builds one ``CallRecord`` per call; a ``CallStore`` keeps them.
Two stores ship: ``SqliteCallStore`` (the default: one file, set by
``TELEPHONY_RECORDS_PATH``) and ``PostgresCallStore`` (``TELEPHONY_DATABASE_URL``,
shared by every replica; ``pip install 'telephony[postgres]'``). Another
database plugs in by implementing ``CallStore``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ..errors import ConfigError
from .record import CallQuery, CallRecord, CallRecorder
from .sqlite import SqliteCallStore

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["CallQuery", "CallRecord", "CallRecorder", "CallStore", "SqliteCallStore", "open_store"]


class CallStore(Protocol):
    """Where call records are kept. Every method is a coroutine run on the server's
    event loop; a store that blocks (SQLite) does its work in a thread. The server
    calls ``save`` once per call, as the call ends, never on the audio path.

    Both shipped stores behave identically (tests/test_store.py runs one suite
    against each)."""

    async def save(self, record: CallRecord) -> None:
        """Write ``record`` whole. An upsert keyed by ``call_sid``: a record already
        stored under that CallSid is replaced (the last save wins), never merged."""
        ...

    async def get(self, call_sid: str) -> CallRecord | None:
        """The record stored under ``call_sid``, or None."""
        ...

    async def list(self, query: CallQuery = CallQuery()) -> list[CallRecord]:  # noqa: B008 (frozen, immutable)
        """The records matching ``query``, newest first (see ``CallQuery``)."""
        ...

    async def close(self) -> None:
        """Release connections; the store may be used again afterwards (it reconnects)."""
        ...


def open_store(settings: Settings) -> CallStore | None:
    """The store the settings name: PostgreSQL if ``database_url`` is set, else the
    SQLite file ``records_path``, else none (records off). Connects on first use."""
    url = settings.database_url.get_secret_value() if settings.database_url else ""
    if url:
        if not url.startswith(("postgresql://", "postgres://")):
            raise ConfigError("TELEPHONY_DATABASE_URL must be a postgresql:// URL")
        from .postgres import PostgresCallStore

        return PostgresCallStore(url)
    if settings.records_path:
        return SqliteCallStore(settings.records_path)
    return None
