"""Tool calls through the real app: results, failures the model can read,
concurrency, and response.create gating."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass

import pytest

from telephony import CallContext, ToolError, tool
from tests.harness import IO_MODES, bridge

pytestmark = pytest.mark.anyio


@tool
def broken(x: int) -> int:
    """Always fails."""
    raise RuntimeError("database unavailable")


@tool
def refuses(x: int) -> int:
    """Fails with a clean message."""
    raise ToolError("that order belongs to another customer")


@tool(timeout=0.2)
def sleepy(seconds: float) -> str:
    """Blocks a worker thread for longer than its timeout."""
    time.sleep(seconds)
    return "done"


@dataclass
class Tools:
    """One test's tools, and what they share with the test."""

    offered: list  # what the bridge offers the model
    release: asyncio.Event  # slow_lookup answers once the test sets it
    contexts: list[CallContext]  # the context of each lookup_order run


@pytest.fixture
def tools() -> Tools:
    release = asyncio.Event()
    contexts: list[CallContext] = []

    @tool
    def lookup_order(order_id: str, ctx: CallContext) -> dict:
        """Look up an order.

        Args:
            order_id: The order number.
        """
        contexts.append(ctx)
        return {"order_id": order_id, "status": "shipped"}

    @tool
    async def slow_lookup(query: str) -> str:
        """A tool that waits for the test to release it."""
        await release.wait()
        return f"slow result for {query}"

    return Tools([lookup_order, slow_lookup, broken, refuses, sleepy], release, contexts)


async def _start(b):
    """A live call with custom parameters: (call, session, the session.update)."""
    call, session = await b.live_call(
        parameters={"From": "+15550001111", "To": "+15550002222", "CallSid": "CA" + "9" * 32, "tenant": "acme"}
    )
    return call, session, session.events("session.update")[0]


def _outputs(session):
    return {
        e["item"]["call_id"]: e["item"]["output"]
        for e in session.events("conversation.item.create")
        if e["item"]["type"] == "function_call_output"
    }


async def test_tools_are_offered_with_schemas_and_return_results_with_context(tools, io):
    async with bridge(tools=tools.offered, server_options=IO_MODES[io]) as b:
        call, session, update = await _start(b)
        offered = {t["name"]: t for t in update["session"]["tools"]}
        assert set(offered) == {"lookup_order", "slow_lookup", "broken", "refuses", "sleepy"}
        schema = offered["lookup_order"]["parameters"]
        assert schema["properties"] == {"order_id": {"type": "string", "description": "The order number."}}
        assert schema["required"] == ["order_id"] and "ctx" not in json.dumps(schema)
        assert offered["lookup_order"]["description"] == "Look up an order."

        _, call_id = await session.function_call("lookup_order", {"order_id": "A-17"})
        out = await session.wait_for("conversation.item.create")
        assert out["item"] == {
            "type": "function_call_output",
            "call_id": call_id,
            "output": json.dumps({"order_id": "A-17", "status": "shipped"}),
        }
        await session.wait_for("response.create")
        ctx = tools.contexts[-1]
        assert ctx.call_sid == call.call_sid and ctx.from_number == "+15550001111"
        assert ctx.to_number == "+15550002222" and ctx.parameters["tenant"] == "acme"
        assert session.rejected_creates == 0


async def test_each_failure_gives_the_model_an_error_and_the_call_goes_on(tools):
    async with bridge(tools=tools.offered) as b:
        call, session, _ = await _start(b)
        cases = [
            ("broken", {"x": 1}, "The broken tool failed because of an internal error"),
            ("refuses", {"x": 1}, "that order belongs to another customer"),
            ("nope", {}, "unknown tool 'nope'"),
            ("lookup_order", "{not json", "invalid arguments"),
            ("lookup_order", {"order": 1}, "order_id: Field required"),
            ("sleepy", {"seconds": 1.0}, "timed out after 0.2 s"),
        ]
        ids = []
        for name, args, _ in cases:
            _, cid = await session.function_call(name, args)
            ids.append(cid)
            await session.wait_for("response.create", count=len(ids))
        outputs = _outputs(session)
        for cid, (name, _, expected) in zip(ids, cases, strict=True):
            text = json.loads(outputs[cid])["error"]
            assert expected in text, (name, text)
        assert "database unavailable" not in outputs[ids[0]]  # the raw exception never reaches the model
        # The call is still alive: caller audio flows.
        await call.send_audio(b"\xff" * 320)
        await session.wait_audio(1920)
        assert session.rejected_creates == 0


async def test_slow_tool_stalls_neither_audio_nor_other_tools_and_gating_waits(tools):
    async with bridge(tools=tools.offered) as b:
        call, session, _ = await _start(b)
        # One response calls two tools; it stays active (no response.done yet).
        rid = await session.response_created()
        for cid, name, args in [
            ("call_slow", "slow_lookup", {"query": "q"}),
            ("call_fast", "lookup_order", {"order_id": "B-2"}),
        ]:
            await session.send(
                {
                    "type": "response.function_call_arguments.done",
                    "event_id": "e_" + cid,
                    "response_id": rid,
                    "item_id": "item_" + cid,
                    "output_index": 0,
                    "call_id": cid,
                    "name": name,
                    "arguments": json.dumps(args),
                }
            )
        # The fast tool answers while the slow one still runs.
        fast = await session.wait_for("conversation.item.create")
        assert fast["item"]["call_id"] == "call_fast"
        # Audio keeps flowing both ways meanwhile.
        await call.send_audio(b"\xff" * 1600)
        await session.wait_audio(9600)
        assert "call_slow" not in _outputs(session)
        tools.release.set()
        slow = await session.wait_for("conversation.item.create", count=2)
        assert slow["item"]["call_id"] == "call_slow"
        # Barrier: audio sent now arrives after anything the bridge sent for the outputs.
        await call.send_audio(b"\xff" * 160)
        await session.wait_audio(9600 + 960)
        assert not session.events("response.create")  # the response is still active: queued
        await session.response_done(rid)
        await session.wait_for("response.create")
        assert len(session.events("response.create")) == 1  # one for both outputs
        assert session.rejected_creates == 0


async def test_duplicate_function_call_runs_once(tools):
    async with bridge(tools=tools.offered) as b:
        call, session, _ = await _start(b)
        await session.function_call("lookup_order", {"order_id": "C-3"}, call_id="call_dup")
        await session.function_call("lookup_order", {"order_id": "C-3"}, call_id="call_dup")
        await session.wait_for("response.create")
        await call.send_audio(b"\xff" * 160)
        await session.wait_audio(960)
        assert len(list(session.events("conversation.item.create"))) == 1


async def test_a_tool_exception_is_logged_with_its_traceback_for_the_operator_only(tools, caplog):
    caplog.set_level(logging.INFO, "telephony")
    async with bridge(tools=tools.offered) as b:
        call, session, _ = await _start(b)
        _, cid = await session.function_call("broken", {"x": 1})
        await session.wait_for("response.create")
        assert "database unavailable" not in _outputs(session)[cid]
    [record] = [r for r in caplog.records if r.getMessage() == "tool.exception"]
    assert record.levelno == logging.WARNING
    assert record.fields["tool"] == "broken" and record.fields["call_sid"] == call.call_sid  # type: ignore[attr-defined]
    assert record.exc_info is not None and "database unavailable" in str(record.exc_info[1])
