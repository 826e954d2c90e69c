"""``@tool``: plain Python functions offered to the model.

The JSON schema comes from the signature: a pydantic model is generated from
the type hints (str, int, float, bool, Literal, Enum, list, dict, Optional,
pydantic models...), so the same model validates the model's arguments before
the function runs. Parameter descriptions come from the docstring's ``Args:``
section (Google style) or ``:param x:`` lines (reST style).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import json
import logging
import re
import time
import typing
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar, overload

import pydantic

from ..errors import ToolArgumentsError, ToolDefinitionError, ToolError
from ..logs import log_event
from ..wording import TOOL_FAILED
from .context import CallContext

log = logging.getLogger("telephony.tools")

__all__ = ["DEFAULT_TIMEOUT", "Tool", "ToolError", "ToolRegistry", "ToolResult", "tool"]

DEFAULT_TIMEOUT = 10.0
#: Threads for synchronous tools (their own pool: a hung tool never delays record
#: writes, lookups or the default executor), and how many may run per call at once.
DEFAULT_TOOL_THREADS = 64
DEFAULT_TOOLS_PER_CALL = 4
_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]  # JSON schema
    function: Callable[..., Any]
    timeout: float | None  # None: the registry's default (TELEPHONY_TOOL_TIMEOUT)
    context_param: str | None
    args_model: type[pydantic.BaseModel]

    def schema(self) -> dict[str, Any]:
        """The Realtime ``session.tools`` entry."""
        return {"type": "function", "name": self.name, "description": self.description, "parameters": self.parameters}


@dataclass(frozen=True, slots=True)
class ToolResult:
    call_id: str
    name: str
    output: str  # what the model reads (JSON text)
    ok: bool
    error: str | None
    duration_s: float


def _doc_parts(doc: str) -> tuple[str, dict[str, str]]:
    """(description, {param: description}) from a docstring."""
    doc = inspect.cleandoc(doc or "")
    params: dict[str, str] = {}
    lines = doc.splitlines()
    desc_lines: list[str] = []
    in_args = False
    current: str | None = None
    for line in lines:
        stripped = line.strip()
        m = re.match(r":param\s+(?:\w+\s+)?(\w+):\s*(.*)", stripped)
        if m:
            params[m.group(1)] = m.group(2)
            current, in_args = m.group(1), False
            continue
        if stripped in ("Args:", "Arguments:", "Parameters:"):
            in_args, current = True, None
            continue
        if in_args:
            if re.match(r"^(Returns?|Raises|Yields|Examples?|Notes?):", stripped):
                in_args = False
                continue
            m = re.match(r"^(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$", stripped)
            if m and line.startswith((" ", "\t")) and not line.startswith(("        ", "\t\t")):
                current = m.group(1)
                params[current] = m.group(2)
            elif current and stripped:
                params[current] += " " + stripped
            continue
        if re.match(r"^(Returns?|Raises|Yields|Examples?):", stripped) or stripped.startswith(":return"):
            break
        if not current:
            desc_lines.append(line)
    description = "\n".join(desc_lines).strip()
    return description, params


def _clean_schema(node: Any) -> Any:
    """Drop pydantic's auto 'title' keys to keep the schema the model sees small."""
    if isinstance(node, dict):
        return {k: _clean_schema(v) for k, v in node.items() if not (k == "title" and isinstance(v, str))}
    if isinstance(node, list):
        return [_clean_schema(v) for v in node]
    return node


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """Replace ``$ref``s to ``$defs`` with the definitions (recursive models keep theirs)."""
    defs = schema.get("$defs", {})

    def walk(node: Any, seen: frozenset[str]) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                key = ref.split("/")[-1]
                if key in seen or key not in defs:
                    raise _Recursive
                merged = {**walk(defs[key], seen | {key}), **{k: v for k, v in node.items() if k != "$ref"}}
                return merged
            return {k: walk(v, seen) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [walk(v, seen) for v in node]
        return node

    try:
        resolved: dict[str, Any] = walk(schema, frozenset())
        return resolved
    except _Recursive:
        return schema


class _Busy(Exception):
    def __init__(self, per_call: int) -> None:
        super().__init__(per_call)
        self.per_call = per_call


class _Recursive(Exception):
    pass


def _build(fn: Callable[..., Any], name: str | None, timeout: float | None, description: str | None) -> Tool:
    tool_name = name or fn.__name__
    if not _NAME_RE.match(tool_name):
        raise ToolDefinitionError(f"tool name {tool_name!r} must match {_NAME_RE.pattern}")
    doc_desc, param_docs = _doc_parts(fn.__doc__ or "")
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception as exc:
        raise ToolDefinitionError(f"tool {tool_name!r}: cannot resolve type hints: {exc}") from exc
    fields: dict[str, Any] = {}
    context_param = None
    for pname, param in inspect.signature(fn).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ToolDefinitionError(f"tool {tool_name!r}: *args/**kwargs cannot be described to the model")
        hint = hints.get(pname, Any)
        if hint is CallContext:
            context_param = pname
            continue
        if pname not in hints:
            raise ToolDefinitionError(f"tool {tool_name!r}: parameter {pname!r} needs a type hint")
        default = ... if param.default is param.empty else param.default
        fields[pname] = (hint, pydantic.Field(default, description=param_docs.get(pname)))
    model = pydantic.create_model(f"{tool_name}_args", __config__=pydantic.ConfigDict(extra="forbid"), **fields)
    schema = _inline_refs(_clean_schema(model.model_json_schema()))
    schema.setdefault("properties", {})
    schema.setdefault("required", [])
    schema.pop("additionalProperties", None)
    return Tool(
        name=tool_name,
        description=description or doc_desc or tool_name.replace("_", " "),
        parameters=schema,
        function=fn,
        timeout=timeout,
        context_param=context_param,
        args_model=model,
    )


_F = TypeVar("_F", bound=Callable[..., Any])


def tool_spec(fn: object) -> Tool | None:
    """The ``Tool`` that ``@tool`` attached to ``fn``, if any."""
    spec = getattr(fn, "__telephony_tool__", None)
    return spec if isinstance(spec, Tool) else None


@overload
def tool(fn: _F) -> _F: ...


@overload
def tool(
    fn: None = None, *, name: str | None = None, timeout: float | None = None, description: str | None = None
) -> Callable[[_F], _F]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    timeout: float | None = None,
    description: str | None = None,
) -> Any:
    """Offer a plain function (sync or async) to the model.

    ``@tool`` or ``@tool(timeout=5, name="lookup")``. Without ``timeout`` the
    server's default applies (``TELEPHONY_TOOL_TIMEOUT``, 10 s). The function itself is
    returned unchanged, with its type (so it stays testable and type checkers see
    its signature); its description is attached as ``fn.__telephony_tool__``.
    A function that cannot be described raises ``ToolDefinitionError`` here.
    """

    def wrap(f: _F) -> _F:
        f.__telephony_tool__ = _build(f, name, timeout, description)  # type: ignore[attr-defined]
        return f

    return wrap(fn) if fn is not None else wrap


def _to_json(value: Any) -> str:
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump_json()
    if isinstance(value, str):
        return json.dumps(value)
    return json.dumps(value, default=_fallback, ensure_ascii=False)


def _fallback(value: Any) -> Any:
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json")
    if hasattr(value, "__dataclass_fields__"):
        import dataclasses

        return dataclasses.asdict(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


class ToolRegistry:
    """The tools offered on a call, by name."""

    def __init__(
        self, tools: Iterable[Tool | Callable[..., Any]] = (), default_timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.default_timeout = default_timeout
        self._tools: dict[str, Tool] = {}
        self.threads = DEFAULT_TOOL_THREADS
        self.per_call = DEFAULT_TOOLS_PER_CALL
        self._pool: ThreadPoolExecutor | None = None
        self._running: Counter[int] = Counter()  # id(CallContext) -> sync tools still running (timed out or not)
        for t in tools:
            self.add(t)

    def limit(self, threads: int, per_call: int) -> None:
        """Bound the synchronous tools: ``threads`` in all, ``per_call`` per call."""
        self.threads, self.per_call = threads, per_call

    def _in_pool(self, context: CallContext, function: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        """Run a sync tool in the tools' own pool, counted against its call until its
        thread returns (a tool that timed out still holds its slot while it runs)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="telephony-tool")
        key = id(context)
        if self._running[key] >= self.per_call:
            raise _Busy(self.per_call)
        loop = asyncio.get_running_loop()
        self._running[key] += 1

        def release(_: object) -> None:
            self._running[key] -= 1
            if self._running[key] <= 0:
                del self._running[key]

        ctx = contextvars.copy_context()
        future = self._pool.submit(ctx.run, functools.partial(function, **kwargs))
        future.add_done_callback(lambda f: loop.call_soon_threadsafe(release, f))
        return asyncio.wrap_future(future)

    def add(self, t: Tool | Callable[..., Any]) -> Tool:
        if isinstance(t, Tool):
            spec = t
        else:
            found = tool_spec(t)
            spec = found if found is not None else _build(t, None, None, None)  # a plain function: describe it now
        if spec.name in self._tools and self._tools[spec.name].function is not spec.function:
            raise ToolDefinitionError(f"two tools are named {spec.name!r}")
        self._tools[spec.name] = spec
        return spec

    def __contains__(self, name: str) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def schemas(self) -> list[dict[str, Any]]:
        return [t.schema() for t in self._tools.values()]

    async def run(self, call_id: str, name: str, arguments: str, context: CallContext) -> ToolResult:
        """Run one call from the model. Never raises: failures become an error
        text the model can read (unknown tool, bad arguments, exception, timeout)."""
        started = time.perf_counter()

        def fail(message: str, for_model: str | None = None) -> ToolResult:
            out = json.dumps({"error": for_model or message}, ensure_ascii=False)
            return ToolResult(call_id, name, out, False, message, time.perf_counter() - started)

        spec = self._tools.get(name)
        if spec is None:
            return fail(f"unknown tool {name!r}; available: {', '.join(self._tools) or 'none'}")
        try:
            raw = json.loads(arguments) if arguments.strip() else {}
            if not isinstance(raw, dict):
                raise ToolArgumentsError("arguments must be a JSON object")
            args = spec.args_model.model_validate(raw)
        except (ValueError, pydantic.ValidationError) as exc:  # JSONDecodeError, ToolArgumentsError
            detail = exc.errors(include_url=False) if isinstance(exc, pydantic.ValidationError) else str(exc)
            if isinstance(detail, list):
                detail = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in detail)
            return fail(f"invalid arguments for {name}: {detail}")
        kwargs = {k: getattr(args, k) for k in spec.args_model.model_fields}
        if spec.context_param:
            kwargs[spec.context_param] = context
        try:
            if inspect.iscoroutinefunction(spec.function):
                coro = spec.function(**kwargs)
            else:
                coro = self._in_pool(context, spec.function, kwargs)
            timeout = spec.timeout if spec.timeout is not None else self.default_timeout
            value = await asyncio.wait_for(coro, timeout)
            if inspect.isawaitable(value):  # a sync function that returned a coroutine
                value = await asyncio.wait_for(value, timeout)
        except TimeoutError:
            return fail(f"{name} timed out after {timeout:g} s")
        except _Busy as exc:
            return fail(f"{name} not run: {exc.per_call} tools of this call are still running; try again shortly")
        except asyncio.CancelledError:
            raise
        except ToolError as exc:
            return fail(str(exc))
        except Exception as exc:
            # The model may read its input out: it gets a short safe text, never the
            # exception's (paths, SQL, secrets); the operator gets the traceback.
            log_event(log, "tool.exception", logging.WARNING, call_sid=context.call_sid, tool=name, exc_info=True)
            return fail(f"{name} failed: {type(exc).__name__}: {exc}", TOOL_FAILED.format(name=name))
        try:
            output = _to_json(value)
        except (TypeError, ValueError) as exc:
            return fail(f"{name} returned a value that is not JSON serialisable: {exc}")
        return ToolResult(call_id, name, output, True, None, time.perf_counter() - started)
