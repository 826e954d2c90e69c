"""@tool schemas from type hints and docstrings, and the runner's failure handling."""

from __future__ import annotations

import asyncio
import enum
import inspect
import sys
import typing
from typing import Literal

import pydantic
import pytest

from telephony import CallContext, tool
from telephony.errors import ToolDefinitionError
from telephony.tools import ToolRegistry, load_tools
from tests.openai_models import validate_client_event

pytestmark = pytest.mark.anyio


class Size(enum.Enum):
    SMALL = "small"
    LARGE = "large"


class Address(pydantic.BaseModel):
    street: str
    city: str = "Springfield"


@tool(timeout=3, name="book")
async def book_appointment(
    day: Literal["mon", "tue"],
    hour: int,
    size: Size,
    ratio: float,
    urgent: bool,
    tags: list[str],
    extra: dict[str, int],
    note: str | None,
    address: Address,
    ctx: CallContext,
    reminder: bool = True,
) -> dict:
    """Book an appointment.

    Args:
        day: Day of the week.
        hour: Hour, 24h clock.
    """
    return {"day": day, "hour": hour, "size": size.value, "address": address.street, "sid": ctx.call_sid}


def test_schema_covers_the_supported_types_and_hides_the_context():
    spec = book_appointment.__telephony_tool__
    assert spec.name == "book" and spec.timeout == 3 and spec.description == "Book an appointment."
    p = spec.parameters
    props = p["properties"]
    assert props["day"] == {"enum": ["mon", "tue"], "type": "string", "description": "Day of the week."}
    assert props["hour"] == {"type": "integer", "description": "Hour, 24h clock."}
    assert props["size"] == {"enum": ["small", "large"], "type": "string"}
    assert props["ratio"] == {"type": "number"} and props["urgent"] == {"type": "boolean"}
    assert props["tags"] == {"items": {"type": "string"}, "type": "array"}
    assert props["extra"] == {"additionalProperties": {"type": "integer"}, "type": "object"}
    assert props["note"] == {"anyOf": [{"type": "string"}, {"type": "null"}]}
    assert props["address"]["properties"]["street"] == {"type": "string"}  # inlined, no $ref
    assert "$defs" not in p and "ctx" not in props
    assert set(p["required"]) == {"day", "hour", "size", "ratio", "urgent", "tags", "extra", "note", "address"}
    assert "reminder" not in p["required"]
    validate_client_event({"type": "session.update", "session": {"type": "realtime", "tools": [spec.schema()]}})


def test_the_decorated_function_stays_a_plain_function():
    @tool
    def add(a: int, b: int = 2) -> int:
        """Add."""
        return a + b

    assert add(1) == 3


async def test_runner_validates_coerces_and_passes_context():
    reg = ToolRegistry([book_appointment])
    ctx = CallContext(call_sid="CA1")
    args = (
        '{"day":"mon","hour":"9","size":"small","ratio":1,"urgent":false,"tags":[],"extra":{},'
        '"note":null,"address":{"street":"Main"}}'
    )
    result = await reg.run("c1", "book", args, ctx)
    assert result.ok, result.error
    assert result.output == '{"day": "mon", "hour": 9, "size": "small", "address": "Main", "sid": "CA1"}'
    bad = await reg.run("c2", "book", '{"day":"sun"}', ctx)
    assert not bad.ok and "day" in bad.error and "hour: Field required" in bad.error


def test_tool_definitions_are_checked_at_decoration_time():
    with pytest.raises(ToolDefinitionError, match="needs a type hint"):

        @tool
        def f(x):
            """No hints."""

    with pytest.raises(ToolDefinitionError, match="must match"):

        @tool(name="has space")
        def g() -> None:
            """Bad name."""

    with pytest.raises(ToolDefinitionError, match=r"\*args/\*\*kwargs"):

        @tool
        def h(*names: str) -> None:
            """Varargs."""

    with pytest.raises(ToolDefinitionError, match="cannot resolve type hints"):

        @tool
        def i(x: NoSuchType) -> None:  # noqa: F821
            """Unresolvable hint."""

    @tool(name="dup")
    def one() -> None:
        """One."""

    @tool(name="dup")
    def two() -> None:
        """Two."""

    with pytest.raises(ToolDefinitionError, match="two tools are named 'dup'"):
        ToolRegistry([one, two])
    # What they were before the exception tree, so existing handlers still catch them.
    assert issubclass(ToolDefinitionError, TypeError) and issubclass(ToolDefinitionError, ValueError)


def test_arguments_that_are_not_an_object_are_reported_to_the_model():
    @tool
    def echo(x: int) -> int:
        """Echo."""
        return x

    result = asyncio.run(ToolRegistry([echo]).run("c", "echo", "[1]", CallContext("CA")))
    assert not result.ok and result.error == "invalid arguments for echo: arguments must be a JSON object"


def test_decorated_functions_keep_their_signature_at_run_time():
    @tool(name="lookup", timeout=2)
    async def lookup_order(order_id: str, ctx: CallContext, verbose: bool = False) -> dict[str, str]:
        """Look up an order."""
        return {"id": order_id}

    sig = inspect.signature(lookup_order)
    assert list(sig.parameters) == ["order_id", "ctx", "verbose"]
    assert typing.get_type_hints(lookup_order) == {
        "order_id": str,
        "ctx": CallContext,
        "verbose": bool,
        "return": dict[str, str],
    }
    assert inspect.iscoroutinefunction(lookup_order) and lookup_order.__name__ == "lookup_order"


TYPED_SNIPPET = """
from telephony import CallContext, tool


@tool
def add(a: int, b: int = 2) -> int:
    \"\"\"Add.\"\"\"
    return a + b


@tool(timeout=3, name="lookup")
async def lookup(order_id: str, ctx: CallContext) -> dict[str, str]:
    \"\"\"Look up.\"\"\"
    return {"id": order_id}


reveal_type(add)
reveal_type(lookup)
add("one")
"""


def test_type_checkers_see_the_decorated_signature(tmp_path):
    """mypy sees through both ``@tool`` and ``@tool(...)``, from any directory (the package
    ships ``py.typed``). About 2 s with a cold cache."""
    api = pytest.importorskip("mypy.api")
    snippet = tmp_path / "typed_tools.py"
    snippet.write_text(TYPED_SNIPPET)
    out, err, _ = api.run(
        [
            "--cache-dir",
            str(tmp_path / "cache"),
            "--no-error-summary",
            "--python-executable",
            sys.executable,
            str(snippet),
        ]
    )
    assert err == ""
    assert 'Revealed type is "def (a: int, b: int =) -> int"' in out, out
    assert (
        'Revealed type is "def (order_id: str, ctx: telephony.tools.context.CallContext) '
        '-> typing.Coroutine[Any, Any, dict[str, str]]"'
    ) in out, out
    assert 'Argument 1 to "add" has incompatible type "str"; expected "int"' in out, out


def test_load_tools_from_a_file_and_a_module(tmp_path):
    path = tmp_path / "mytools.py"
    path.write_text(
        "from telephony import tool\n\n@tool\ndef ping(x: str) -> str:\n    '''Ping.'''\n"
        "    return x\n\ndef not_a_tool():\n    pass\n"
    )
    assert [t.name for t in load_tools(str(path))] == ["ping"]
    assert {t.name for t in load_tools("examples.tools")} >= {"lookup_order", "book_appointment"}


async def test_default_timeout_comes_from_the_registry():
    @tool
    async def waits() -> str:
        """Waits forever."""
        await asyncio.Event().wait()
        return "never"

    assert waits.__telephony_tool__.timeout is None
    result = await ToolRegistry([waits], default_timeout=0.05).run("c", "waits", "{}", CallContext("CA"))
    assert not result.ok and result.error == "waits timed out after 0.05 s"
