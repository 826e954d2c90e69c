"""Logs: tracebacks reach the log (both formats), and secrets never do, tracebacks included."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from telephony.call import CallStarted
from telephony.logs import JsonFormatter, RedactSecrets, TextFormatter, log_event, log_handler
from tests.harness import IO_MODES, bridge

KEY = "sk-test-key-abcdef"  # the harness's OpenAI key


@contextmanager
def captured(logger_name: str, secrets: list[str]) -> Iterator[tuple[io.StringIO, io.StringIO]]:
    """The handler the server installs, in both formats, on ``logger_name``."""
    json_out, text_out = io.StringIO(), io.StringIO()
    handlers = [log_handler("json", secrets, json_out), log_handler("text", secrets, text_out)]
    logger = logging.getLogger(logger_name)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    for h in handlers:
        logger.addHandler(h)
    try:
        yield json_out, text_out
    finally:
        for h in handlers:
            logger.removeHandler(h)
        logger.setLevel(old_level)


def json_lines(out: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]


def test_log_event_passes_exc_info_and_stack_info_to_logging():
    with captured("telephony.test.exc", []) as (json_out, text_out):
        log = logging.getLogger("telephony.test.exc")
        try:
            raise KeyError("missing thing")
        except KeyError:
            log_event(log, "thing.failed", logging.ERROR, call_sid="CA1", exc_info=True)
        log_event(log, "thing.where", logging.WARNING, stack_info=True)
        log_event(log, "thing.fine", call_sid="CA2", exc_info=None)
    failed, where, fine = json_lines(json_out)
    assert failed["event"] == "thing.failed" and failed["call_sid"] == "CA1" and "exc_info" not in failed
    assert failed["exception"].startswith("Traceback (most recent call last):")
    assert failed["exception"].endswith("KeyError: 'missing thing'")
    assert "stack" not in failed
    assert where["stack"].startswith("Stack (most recent call last):") and "exception" not in where
    assert "test_log_event_passes_exc_info_and_stack_info_to_logging" in where["stack"]
    assert set(fine) == {"ts", "level", "pid", "event", "call_sid"} and fine["pid"] == os.getpid()
    text = text_out.getvalue().splitlines()
    assert text[0].endswith("error thing.failed call_sid=CA1")
    assert text[1] == "Traceback (most recent call last):" and "KeyError: 'missing thing'" in text


def test_log_event_points_the_record_at_its_caller(caplog):
    log = logging.getLogger("telephony.test.caller")
    with caplog.at_level(logging.INFO, "telephony.test.caller"):
        log_event(log, "here")
    (record,) = caplog.records
    assert record.funcName == "test_log_event_points_the_record_at_its_caller"
    assert record.pathname == __file__


def test_secrets_are_redacted_from_tracebacks_and_stacks():
    secrets = ["sk-live-123456", "tok-abcdef-999"]
    with captured("telephony.test.redact", secrets) as (json_out, text_out):
        log = logging.getLogger("telephony.test.redact")
        try:
            try:
                raise ConnectionError("upstream said: bad key sk-live-123456")
            except ConnectionError as exc:
                raise RuntimeError("retry with tok-abcdef-999 failed") from exc
        except RuntimeError:
            log_event(log, "call.error", logging.ERROR, detail="key sk-live-123456", exc_info=True)
        # The stack shows this source line, secret and all.
        log_event(log, "call.where", logging.WARNING, stack_info=True, length=len("sk-live-123456"))
    for out in (json_out.getvalue(), text_out.getvalue()):
        assert "sk-live-123456" not in out and "tok-abcdef-999" not in out
    error = json_lines(json_out)[0]
    assert error["event"] == "call.error" and error["detail"] == "key [redacted]"
    assert "ConnectionError: upstream said: bad key [redacted]" in error["exception"]
    assert "RuntimeError: retry with [redacted] failed" in error["exception"]
    assert "RuntimeError: retry with [redacted] failed" in text_out.getvalue()
    where = json_lines(json_out)[1]
    assert 'length=len("[redacted]")' in where["stack"] and where["length"] == 14


def test_redaction_also_cleans_a_traceback_another_handler_formatted_first():
    """A handler without the filter may format (and cache) the traceback first."""
    try:
        raise ValueError("key sk-live-123456")
    except ValueError as exc:
        err = exc
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "boom", (), (type(exc), exc, exc.__traceback__))
    assert "sk-live-123456" in logging.Formatter().format(record)  # caches record.exc_text
    RedactSecrets(["sk-live-123456"]).filter(record)
    for formatter in (JsonFormatter(), TextFormatter(), logging.Formatter()):
        line = formatter.format(record)
        assert "sk-live-123456" not in line and "ValueError: key [redacted]" in line
    assert record.exc_info is not None and record.exc_info[1] is err  # kept for handlers that want it


@pytest.mark.anyio
@pytest.mark.parametrize("io_mode", list(IO_MODES))
async def test_a_crash_in_one_call_logs_its_traceback_and_only_that_call_ends(io_mode, caplog):
    """An exception inside one call's handling (here a notice listener that raises
    once) logs ``call.error`` with the traceback, redacted, and fails that call
    only: the next call on the same server works."""
    crashed: list[str] = []

    def listener(call_sid, observed) -> None:
        if isinstance(observed, CallStarted) and not crashed:
            crashed.append(call_sid)
            raise RuntimeError(f"listener exploded (key {KEY})")

    with caplog.at_level(logging.INFO, "telephony"):
        async with bridge(server_options=IO_MODES[io_mode]) as b:
            b.observer.listeners.append(listener)
            with captured("telephony", b.settings.secrets()) as (json_out, text_out):
                first = b.twilio()
                await first.connect()
                await first.start()
                await first.wait_closed()  # the failed call is hung up
                assert crashed == [first.call_sid]

                second, _session = await b.live_call()
                await second.hang_up()
                await second.wait_closed()
        counters, json_text, text = b.observer.counters, json_out.getvalue(), text_out.getvalue()
        first_sid, second_sid = first.call_sid, second.call_sid

    (record,) = [r for r in caplog.records if r.getMessage() == "call.error"]
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError) and "listener exploded" in str(record.exc_info[1])
    assert record.fields["call_sid"] == first_sid and "exc_info" not in record.fields
    ends = {r.fields["call_sid"]: r.fields for r in caplog.records if r.getMessage() == "call.end"}
    assert ends[first_sid]["outcome"] == "failed" and ends[first_sid]["reason"] == "internal error"
    assert ends[second_sid]["outcome"] != "failed"
    assert counters["calls_failed"] == 1

    assert KEY not in json_text and KEY not in text
    (error,) = [e for e in json_lines(io.StringIO(json_text)) if e["event"] == "call.error"]
    assert error["call_sid"] == first_sid
    assert error["exception"].startswith("Traceback (most recent call last):")
    assert error["exception"].endswith("RuntimeError: listener exploded (key [redacted])")
    assert "in listener" in error["exception"]  # the frame that raised
    assert "\nTraceback (most recent call last):\n" in text
    assert "RuntimeError: listener exploded (key [redacted])" in text


def test_text_lines_carry_the_date_and_the_pid():
    """A worker's lines are told apart by their pid; yesterday's by their date."""
    with captured("telephony.test.text", []) as (_json_out, text_out):
        log_event(logging.getLogger("telephony.test.text"), "thing.done", call_sid="CA1")
    (line,) = text_out.getvalue().splitlines()
    day, clock, pid, rest = line.split(" ", 3)
    assert day == time.strftime("%Y-%m-%d") or day == time.strftime("%Y-%m-%d", time.localtime(time.time() - 5))
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3}", clock)
    assert pid == f"[{os.getpid()}]" and rest == "info thing.done call_sid=CA1"
