"""Structured logs: one line per call event worth knowing, never per frame.

``log_event(logger, "call.start", call_sid=..., ...)``. JSON lines by default
(``TELEPHONY_LOG_FORMAT=text`` for ``event key=value``). ``exc_info=True`` (in an
``except`` block) adds the traceback: the ``exception`` field of the JSON line, or
the lines after the text line; ``stack_info=True`` adds the caller's stack
(``stack``). Known secrets are replaced by ``[redacted]`` in every record,
tracebacks included, whatever logged them.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from types import TracebackType
from typing import IO, Any, TypeAlias

__all__ = [
    "MAX_FIELD_CHARS",
    "JsonFormatter",
    "RedactSecrets",
    "TextFormatter",
    "escape_control",
    "log_event",
    "log_handler",
    "setup_logging",
]

#: Longer string fields are cut (with a note of how much) in every log format.
MAX_FIELD_CHARS = 2000
#: Control characters (C0, DEL, C1) and the Unicode line separators: never raw in a log line.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u2028\u2029]")  # json.dumps escapes C0 itself


def _escape_one(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_control(text: str, limit: int | None = None) -> str:
    """``text`` with control characters written as ``\\xNN`` (a forged line break,
    tab or terminal escape stays visible and inert), cut at ``limit`` characters."""
    if limit is not None and len(text) > limit:
        text = f"{text[:limit]}...[{len(text) - limit} more characters]"
    return _CONTROL.sub(_escape_one, text)


def _capped(value: Any, limit: int, depth: int = 0) -> Any:
    """String fields cut at ``limit`` (inside lists and dicts too, a few levels deep)."""
    if isinstance(value, str):
        return value if len(value) <= limit else f"{value[:limit]}...[{len(value) - limit} more characters]"
    if depth < 3 and isinstance(value, dict):
        return {str(k)[:limit]: _capped(v, limit, depth + 1) for k, v in value.items()}
    if depth < 3 and isinstance(value, (list, tuple)):
        return [_capped(v, limit, depth + 1) for v in value]
    return value


_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


ExcInfo: TypeAlias = (
    bool
    | BaseException
    | tuple[type[BaseException], BaseException, TracebackType | None]
    | tuple[None, None, None]
    | None
)


def log_event(
    logger: logging.Logger,
    event: str,
    level: int = logging.INFO,
    *,
    exc_info: ExcInfo = None,
    stack_info: bool = False,
    **fields: Any,
) -> None:
    """Log ``event`` with ``fields``. ``exc_info`` and ``stack_info`` go to the logging
    call as in ``Logger.log`` (they are not fields); the record points at our caller."""
    if logger.isEnabledFor(level):
        logger.log(level, event, exc_info=exc_info, stack_info=stack_info, stacklevel=2, extra={"fields": fields})


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return dict(fields) if isinstance(fields, dict) else {}


def _exception_text(formatter: logging.Formatter, record: logging.LogRecord) -> str | None:
    """The record's traceback text, formatted once and cached in ``exc_text`` as
    ``logging.Formatter`` does (``RedactSecrets`` cleans that cache)."""
    if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
        record.exc_text = formatter.formatException(record.exc_info)
    return record.exc_text or None


class JsonFormatter(logging.Formatter):
    """One JSON object per line: control characters escaped (by JSON, and C1 ones
    here), string fields cut at ``max_field`` characters."""

    def __init__(self, max_field: int = MAX_FIELD_CHARS) -> None:
        super().__init__()
        self.max_field = max_field

    def format(self, record: logging.LogRecord) -> str:
        limit = self.max_field
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "pid": record.process,
            "event": _capped(record.getMessage(), limit),
        }
        out.update({k: _capped(v, limit) for k, v in _fields(record).items()})
        exc = _exception_text(self, record)
        if exc:
            out["exception"] = exc
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        line = json.dumps(out, default=str, ensure_ascii=False)
        return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", line)


class TextFormatter(logging.Formatter):
    """``date time [pid] level event key=value ...``: values with control characters escaped
    (one record is one line, whatever a caller sent) and cut at ``max_field``."""

    def __init__(self, max_field: int = MAX_FIELD_CHARS) -> None:
        super().__init__()
        self.max_field = max_field

    def _value(self, v: Any) -> str:
        if not isinstance(v, str):
            return escape_control(str(_capped(v, self.max_field)))
        text = _capped(v, self.max_field)
        return repr(text) if " " in text else escape_control(text)  # repr escapes control characters too

    def format(self, record: logging.LogRecord) -> str:
        parts = [
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created)) + f".{int(record.msecs):03d}",
            f"[{record.process}]",
            record.levelname.lower(),
            escape_control(record.getMessage(), self.max_field),
        ]
        parts += [f"{escape_control(str(k), 100)}={self._value(v)}" for k, v in _fields(record).items()]
        line = " ".join(parts)
        exc = _exception_text(self, record)
        if exc:
            line += "\n" + exc
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


class RedactSecrets(logging.Filter):
    """Replace known secret values wherever they appear in a record: the message,
    the fields, the traceback text and the stack. The traceback is formatted here
    and its cleaned text cached in ``exc_text``, which every ``logging.Formatter``
    prints instead of formatting ``exc_info`` again (``exc_info`` is kept, so
    handlers that want the exception object still get it)."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if len(s) >= 6]

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            for s in self.secrets:
                if s in value:
                    value = value.replace(s, "[redacted]")
            return value
        if isinstance(value, dict):
            return {k: self._clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self._clean(v) for v in value)
        return value

    def clean(self, text: str) -> str:
        """``text`` with every known secret replaced."""
        return str(self._clean(text))

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        record.msg = self._clean(record.getMessage())
        record.args = ()
        if isinstance(getattr(record, "fields", None), dict):
            record.__dict__["fields"] = self._clean(record.__dict__["fields"])
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._clean(record.exc_text)
        if record.stack_info:
            record.stack_info = self._clean(record.stack_info)
        return True


def log_handler(
    fmt: str = "json", secrets: list[str] | None = None, stream: IO[str] | None = None, max_field: int = MAX_FIELD_CHARS
) -> logging.Handler:
    """The handler ``setup_logging`` installs: ``fmt`` lines, secrets redacted, to
    ``stream`` (stderr)."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter(max_field) if fmt == "json" else TextFormatter(max_field))
    handler.addFilter(RedactSecrets(secrets or []))
    return handler


#: Loggers that write a line per WebSocket frame at DEBUG (websockets logs frames to the
#: logger it is given: ours for the Realtime client, uvicorn's "uvicorn.error" for the
#: media streams): kept at INFO unless ``frames``.
FRAME_LOGGERS = ("telephony.realtime.ws", "uvicorn.error", "websockets")


def setup_logging(
    level: str = "INFO",
    fmt: str = "json",
    secrets: list[str] | None = None,
    max_field: int = MAX_FIELD_CHARS,
    frames: bool = False,
) -> None:
    """Logs to stderr. Uvicorn's access lines are off (calls have their own events);
    per-frame WebSocket lines only with ``frames`` (TELEPHONY_LOG_FRAMES) at DEBUG."""
    handler = log_handler(fmt, secrets, max_field=max_field)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    for name in FRAME_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if frames else logging.INFO)
    if not frames:
        logging.getLogger("websockets").setLevel(logging.WARNING)
