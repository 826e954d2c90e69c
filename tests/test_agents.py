"""Several agents on one bridge: which one answers (setting, number, route()),
handoffs inside one Realtime session, MCP tools and the API's mcp_* events, and
every session setting valid against the ``openai`` SDK's types."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import textwrap

import pytest

from telephony import Agent, CallContext, tool
from telephony.agents import Agents
from telephony.call import AgentChanged, Call, CallConfig, McpApproval, McpCall, Phase
from telephony.config import DEFAULT_MODEL, DEFAULT_TRANSCRIPTION_MODEL, Settings
from telephony.errors import ConfigError
from telephony.tools.loader import load_module
from telephony.wire import realtime as rt
from telephony.wire import twilio as tw
from telephony.wire.session import session_config
from tests.harness import bridge
from tests.openai_models import validate_client_event, validate_server_event

pytestmark = pytest.mark.anyio

BILLING_NUMBER = "+15551230000"


@tool
def lookup_invoice(invoice_id: str) -> dict:
    """Look up an invoice.

    Args:
        invoice_id: The invoice number.
    """
    return {"invoice_id": invoice_id, "due": "12.50"}


@tool
def opening_hours() -> str:
    """When the shop is open."""
    return "9 to 5"


def front_desk() -> list[Agent]:
    billing = Agent(name="billing", instructions="You are the billing desk.", tools=[lookup_invoice])
    triage = Agent(
        name="default",
        instructions="You are the front desk.",
        tools=[opening_hours],
        handoffs=[billing],
        description="the front desk",
    )
    billing.handoffs = ["default"]
    return [triage, billing]


def names(session_update: dict) -> list[str]:
    return [t.get("name") or t.get("server_label") for t in session_update["session"]["tools"]]


async def record_of(b, call) -> dict:
    await asyncio.gather(*(s.wait_ended() for s in list(b.admission.sessions)))
    await b.observer.flush_records()
    return (await b.observer.store.get(call.call_sid)).to_dict()


# --- every session setting -----------------------------------------------------------------


def every_setting(**extra) -> Settings:
    values = {
        "model": "gpt-realtime-2",
        "voice": '{"id": "voice_1234"}',
        "reasoning_effort": "high",
        "parallel_tool_calls": "false",
        "tool_choice": "required",
        "truncation": '{"type": "retention_ratio", "retention_ratio": 0.8, "token_limits": {"post_instructions": 8000}}',
        "max_output_tokens": "inf",
        "noise_reduction": "near_field",
        "noise_reduction_strength": "0.6",
        "create_response": "false",
        "interrupt_response": "false",
        "prompt": '{"id": "pmpt_123", "version": "2", "variables": {"city": "Paris"}}',
        "tracing": '{"workflow_name": "phone", "group_id": "line-1"}',
        "include": '["item.input_audio_transcription.logprobs"]',
        "transcription_model": "gpt-live-transcribe",
        "transcription_languages": '["en", "fr"]',
        "transcription_keywords": '["invoice", "Acme"]',
        "transcription_prompt": "Billing questions",
        "mcp_servers": '[{"server_label": "crm", "server_url": "https://crm.example/mcp", '
        '"authorization": "tok-secret-1", "allowed_tools": ["find_customer"], "require_approval": "never"}]',
    }
    values.update(extra)
    env = {f"TELEPHONY_{k.upper()}": v for k, v in values.items()}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return Settings(_env_file=None)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_every_new_setting_reaches_the_payload_and_is_valid_for_the_sdk():
    s = every_setting()
    session = session_config(s, [m.tool() for m in s.mcp_servers])
    validate_client_event({"type": "session.update", "session": session})
    assert session["reasoning"] == {"effort": "high"} and session["parallel_tool_calls"] is False
    assert session["tool_choice"] == "required"
    assert session["truncation"]["retention_ratio"] == 0.8
    assert session["max_output_tokens"] == "inf"
    assert session["prompt"]["variables"] == {"city": "Paris"}
    assert session["tracing"]["workflow_name"] == "phone"
    assert session["include"] == ["item.input_audio_transcription.logprobs"]
    audio = session["audio"]
    assert audio["output"]["voice"] == {"id": "voice_1234"}
    assert audio["input"]["noise_reduction"] == {"type": "near_field", "strength": 0.6}
    td = audio["input"]["turn_detection"]
    assert td["create_response"] is False and td["interrupt_response"] is False
    assert audio["input"]["transcription"] == {
        "model": "gpt-live-transcribe",
        "languages": ["en", "fr"],
        "keywords": ["invoice", "Acme"],
        "prompt": "Billing questions",
    }
    assert session["tools"][0] == {
        "type": "mcp",
        "server_label": "crm",
        "server_url": "https://crm.example/mcp",
        "authorization": "tok-secret-1",
        "allowed_tools": ["find_customer"],
        "require_approval": "never",
    }
    assert "tok-secret-1" in s.secrets()  # redacted from logs


def test_other_values_of_the_settings_are_valid_too():
    s = every_setting(
        model="gpt-realtime-1.5",
        tool_choice='{"type": "function", "name": "lookup_invoice"}',
        truncation="disabled",
        max_output_tokens="4096",
        tracing="auto",
        voice="cedar",
        turn_detection="semantic_vad",
        transcription_model="gpt-realtime-whisper",
        transcription_delay="low",
        transcription_keywords="",
        transcription_languages="",
        transcription_prompt="",
    )
    session = session_config(s, [])
    validate_client_event({"type": "session.update", "session": session})
    # gpt-realtime-1.5 does not reason: neither reasoning nor parallel_tool_calls is sent
    assert "reasoning" not in session and "parallel_tool_calls" not in session
    assert session["max_output_tokens"] == 4096 and session["tracing"] == "auto"
    assert session["audio"]["input"]["transcription"] == {"model": "gpt-realtime-whisper", "delay": "low"}
    assert session["audio"]["input"]["turn_detection"]["interrupt_response"] is False


def test_defaults_are_current_and_keep_todays_turn_behaviour():
    s = Settings(_env_file=None)
    assert s.model == DEFAULT_MODEL == "gpt-realtime-2.1"
    assert s.transcription_model == DEFAULT_TRANSCRIPTION_MODEL == "gpt-live-transcribe"
    session = session_config(s, [])
    validate_client_event({"type": "session.update", "session": session})
    td = session["audio"]["input"]["turn_detection"]
    # interrupt_response=false: the bridge's barge-in policy decides (TELEPHONY_BARGE_IN_MIN_MS, 400 by default)
    assert td["create_response"] is True and td["interrupt_response"] is False
    assert s.barge_in_min_ms == 400
    assert session["tool_choice"] == "auto" and session["truncation"] == "auto"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("max_output_tokens", "0"),
        ("max_output_tokens", "4097"),
        ("truncation", '{"type": "retention_ratio", "retention_ratio": 1.5}'),
        ("truncation", "sometimes"),
        ("tool_choice", "maybe"),
        ("tracing", "on"),
        ("prompt", '{"version": "1"}'),
        ("voice", '{"name": "x"}'),
        ("reasoning_effort", "extreme"),
        ("mcp_servers", '[{"server_label": "crm"}]'),
        ("mcp_servers", '[{"server_label": "crm", "server_url": "ftp://x"}]'),
    ],
)
def test_bad_session_settings_are_refused_at_start(name, value, monkeypatch):
    monkeypatch.setenv(f"TELEPHONY_{name.upper()}", value)
    with pytest.raises(ValueError, match=name):
        Settings(_env_file=None)


# --- which agent answers -------------------------------------------------------------------


def test_the_default_agent_is_the_setting_then_default_then_the_only_one():
    a, b = Agent(name="a", instructions="A"), Agent(name="b", instructions="B")
    assert Agents([a, b], default="b").default is b
    assert Agents([a]).default is a
    assert Agents(front_desk()).default.name == "default"
    with pytest.raises(ConfigError, match=r"several agents .* none chosen"):
        Agents([a, b])
    with pytest.raises(ConfigError, match="names no agent"):
        Agents([a, b], default="c")
    with pytest.raises(ConfigError, match="unknown agent 'c'"):
        Agents([Agent(name="a", instructions="A", handoffs=["c"])])
    with pytest.raises(ConfigError, match="unknown agent 'nobody'"):
        Agents([a], by_number={"+1555": "nobody"})
    with pytest.raises(ConfigError, match="agent name"):
        Agent(name="has space", instructions="x")


def test_the_loader_collects_agents_and_route(tmp_path):
    path = tmp_path / "desk.py"
    path.write_text(
        textwrap.dedent(
            """
            from telephony import Agent, tool

            @tool
            def hours() -> str:
                return "9 to 5"

            @tool
            def refund(order: str) -> str:
                return "ok"

            billing = Agent(name="billing", instructions="Billing.", tools=[refund])
            default = Agent(name="default", instructions="Front desk.", tools=[hours], handoffs=[billing])

            def route(ctx):
                return "billing" if ctx.to_number == "+15551230000" else None
            """
        )
    )
    loaded = load_module(str(path))
    assert sorted(t.name for t in loaded.tools) == ["hours", "refund"]
    assert [a.name for a in loaded.agents] == ["billing", "default"]
    assert loaded.route is not None and loaded.route(CallContext("CA1", to_number=BILLING_NUMBER)) == "billing"


async def test_each_agent_first_session_update_and_routing_by_number():
    async with bridge(agents=front_desk(), agents_by_number={BILLING_NUMBER: "billing"}) as b:
        _, session = await b.live_call()
        update = session.events("session.update")[0]
        assert update["session"]["instructions"] == "You are the front desk."
        assert names(update) == ["opening_hours", "handoff_to_billing"]

        _, session = await b.live_call(parameters={"From": "+15550001111", "To": BILLING_NUMBER, "CallSid": "CAb"})
        update = session.events("session.update")[0]
        assert update["session"]["instructions"] == "You are the billing desk."
        assert names(update) == ["lookup_invoice", "handoff_to_default"]
        assert b.observer.counters["agent_chosen"] == 2


async def test_route_decides_per_call_and_falls_back_on_errors_and_timeouts(caplog):
    agents = front_desk()

    async def route(ctx: CallContext) -> Agent | str | None:
        choice = ctx.parameters.get("desk")
        if choice == "slow":
            await asyncio.Event().wait()  # never answers: cut off by the timeout
        if choice == "broken":
            raise RuntimeError("CRM down")
        return agents[1] if choice == "billing" else None

    caplog.set_level(logging.WARNING, logger="telephony.agents")
    async with bridge(agents=Agents(agents, route=route, route_timeout=0.2)) as b:
        for desk, expected in [("billing", "billing desk"), ("slow", "front desk"), ("broken", "front desk")]:
            params = {"From": "+15550001111", "To": "+15550002222", "CallSid": f"CA{desk}", "desk": desk}
            _, session = await b.live_call(parameters=params)
            assert expected in session.events("session.update")[0]["session"]["instructions"]
    failures = [r.fields for r in caplog.records if r.getMessage() == "agents.route_failed"]
    assert [f["fallback"] for f in failures] == ["default", "default"]
    assert "TimeoutError" in failures[0]["error"] and "CRM down" in failures[1]["error"]


async def test_sync_route_is_used_too():
    agents = front_desk()
    async with bridge(agents=Agents(agents, route=lambda ctx: "billing")) as b:
        _, session = await b.live_call()
        assert session.events("session.update")[0]["session"]["instructions"] == "You are the billing desk."


# --- handoffs ------------------------------------------------------------------------------


async def test_handoff_switches_instructions_and_tools_in_the_same_session_and_is_recorded():
    async with bridge(agents=front_desk()) as b:
        call, session = await b.live_call()
        await session.respond_audio(b"\x01\x00" * 2400, transcript="Front desk, how can I help?")
        _, call_id = await session.function_call("handoff_to_billing", {"reason": "invoice question"})
        second = await session.wait_for("session.update", count=2)
        assert second["session"]["instructions"] == "You are the billing desk."
        assert names(second) == ["lookup_invoice", "handoff_to_default"]
        assert "audio" not in second["session"] and "model" not in second["session"]  # voice and model stay
        output = await session.wait_for("conversation.item.create")
        assert output["item"]["call_id"] == call_id and "billing agent" in output["item"]["output"]
        await session.wait_for("response.create")
        order = [e["type"] for e in session.received if e["type"] != "input_audio_buffer.append"]
        assert (
            order.index("session.update", 1) < order.index("conversation.item.create") < order.index("response.create")
        )
        # billing's tool runs now; the front desk's does not
        _, lookup = await session.function_call("lookup_invoice", {"invoice_id": "42"})
        done = await session.wait_for("conversation.item.create", lambda e: e["item"].get("call_id") == lookup)
        assert json.loads(done["item"]["output"])["due"] == "12.50"
        _, hours = await session.function_call("opening_hours", {})
        refused = await session.wait_for("conversation.item.create", lambda e: e["item"].get("call_id") == hours)
        assert "not available" in refused["item"]["output"]
        await session.respond_audio(b"\x01\x00" * 2400, transcript="Billing here, invoice 42 is due.")
        await session.wait_for("conversation.item.create", count=3)
        assert len(b.fake.sessions) == 1  # no new Realtime session
        await call.hang_up()
        record = await record_of(b, call)
    assert [(a["agent"], a["how"], a["reason"]) for a in record["agents"]] == [
        ("default", "default", None),
        ("billing", "handoff", "invoice question"),
    ]
    spoken = [(t["agent"], t["text"]) for t in record["transcript"] if t["role"] == "agent"]
    assert spoken == [("default", "Front desk, how can I help?"), ("billing", "Billing here, invoice 42 is due.")]
    assert record["agents"][1]["t"] > 0


async def test_a_new_session_after_a_handoff_is_the_new_agent_with_the_first_voice():
    agents = front_desk()
    agents[0].voice = "cedar"
    agents[1].voice = "ash"  # not used: the call's voice is the one that answered
    async with bridge(agents=agents) as b:
        _, s1 = await b.live_call()
        assert s1.events("session.update")[0]["session"]["audio"]["output"]["voice"] == "cedar"
        await s1.function_call("handoff_to_billing", {})
        await s1.wait_for("session.update", count=2)
        await s1.wait_for("response.create")
        await s1.close(1001, "going away")
        s2 = await b.fake.next_session()
        first = (await s2.wait_for("session.update"))["session"]
        assert first["instructions"] == "You are the billing desk."
        assert [t["name"] for t in first["tools"]] == ["lookup_invoice", "handoff_to_default"]
        assert first["audio"]["output"]["voice"] == "cedar"


def test_a_reconnect_after_a_handoff_configures_the_new_session_as_the_current_agent():
    c = Call(CallConfig(quiet_timeout_s=0))
    start = tw.Start("MZ1", "CA1", "AC1", {})
    c.receive_twilio(start, 0.0)
    c.realtime_opened('{"type":"session.update","n":1}', 0.0)
    c.receive_realtime(rt.SessionUpdated(), 0.0)
    c.drain_realtime()
    c.drain_actions()
    notice = AgentChanged("billing", "default", "handoff", None)
    c.update_session('{"type":"session.update","n":2}', '{"type":"session.update","n":3}', 1.0, notice)
    assert list(c.drain_realtime()) == ['{"type":"session.update","n":2}']
    assert list(c.drain_actions()) == [notice]
    c.realtime_closed("network", 2.0)
    assert c.phase is Phase.RECONNECTING
    c.drain_realtime()
    c.tick(2.0)
    c.drain_actions()
    c.realtime_opened('{"type":"session.update","n":1}', 2.5)  # the bridge's first update: superseded
    assert next(iter(c.drain_realtime())) == '{"type":"session.update","n":3}'
    # while no session is live nothing is sent, and the next one is configured as the newest agent
    c.realtime_closed("network", 3.0)
    c.update_session('{"type":"session.update","n":4}', '{"type":"session.update","n":5}', 3.1)
    assert list(c.drain_realtime()) == []
    c.tick(3.1)
    c.realtime_opened('{"type":"session.update","n":1}', 3.2)
    assert next(iter(c.drain_realtime())) == '{"type":"session.update","n":5}'


# --- MCP -----------------------------------------------------------------------------------


def test_mcp_events_parse_to_typed_values():
    assert rt.parse(b'{"type":"mcp_list_tools.failed","event_id":"e","item_id":"i1"}') == rt.McpProgress(
        "list_tools", "failed", "i1"
    )
    call = {
        "type": "response.output_item.done",
        "event_id": "e",
        "response_id": "r",
        "output_index": 0,
        "item": {
            "type": "mcp_call",
            "id": "i2",
            "server_label": "crm",
            "name": "find",
            "arguments": "{}",
            "error": {"type": "http_error", "code": 502, "message": "bad gateway"},
        },
    }
    validate_server_event(call)
    assert rt.parse(json.dumps(call)) == rt.McpCallDone("i2", "crm", "find", "{}", None, "bad gateway")
    call["item"] = {"type": "mcp_call", "id": "i2", "server_label": "crm"}  # no name: invalid, not a crash
    assert isinstance(rt.parse(json.dumps(call)), rt.Invalid)
    call["item"] = {"type": "message", "id": "i3", "role": "assistant", "content": []}
    assert rt.parse(json.dumps(call)) == rt.Unknown("response.output_item.done")


@pytest.mark.parametrize("policy", ["deny", "approve"])
async def test_mcp_tools_in_the_session_and_the_events_logged_and_recorded(policy, caplog):
    crm = {"server_label": "crm", "server_url": "https://crm.example/mcp", "require_approval": "always"}
    billing = Agent(
        name="billing",
        instructions="Billing.",
        mcp_servers=[
            {"server_label": "ledger", "server_url": "https://ledger.example/mcp", "headers": {"X-Key": "k1"}}
        ],
    )
    caplog.set_level(logging.INFO, logger="telephony.call")
    async with bridge(agents=[billing], mcp_servers=[crm], mcp_approval=policy) as b:
        call, session = await b.live_call()
        tools = session.events("session.update")[0]["session"]["tools"]
        assert [(t["type"], t["server_label"]) for t in tools] == [("mcp", "crm"), ("mcp", "ledger")]
        assert tools[1]["headers"] == {"X-Key": "k1"}

        await session.mcp_list_tools("crm", ["find_customer"])
        await session.mcp_list_tools("ledger", [], failed=True)
        await session.mcp_call("crm", "find_customer", {"phone": "+1555"}, output='{"name": "Ada"}')
        await session.mcp_call("ledger", "balance", {}, error="ledger timed out")
        request = await session.mcp_approval_request("crm", "delete_customer", {"id": 7})
        answer = await session.wait_for("conversation.item.create")
        assert answer["item"]["type"] == "mcp_approval_response"
        assert answer["item"]["approval_request_id"] == request
        assert answer["item"]["approve"] is (policy == "approve")
        await session.wait_for("response.create")  # the API goes on once asked
        for event in session.sent:
            validate_server_event(event)
        await call.hang_up()
        record = await record_of(b, call)
        counters = b.observer.counters
        assert counters["mcp_calls"] == 2 and counters["mcp_list_tools_failed"] == 1
        assert counters["mcp_approvals" if policy == "approve" else "mcp_denials"] == 1
    mcp = [(c["mcp_server"], c["name"], c.get("ok"), c.get("approval")) for c in record["tool_calls"]]
    assert mcp == [
        ("crm", "find_customer", True, None),
        ("ledger", "balance", False, None),
        ("crm", "delete_customer", None, "approved" if policy == "approve" else "denied"),
    ]
    assert record["tool_calls"][0]["result"] == '{"name": "Ada"}'
    assert record["tool_calls"][1]["error"] == "ledger timed out"
    calls = [r.fields for r in caplog.records if r.getMessage() == "mcp.call"]
    assert [(f["server"], f["ok"], f["error"]) for f in calls] == [
        ("crm", True, None),
        ("ledger", False, "ledger timed out"),
    ]


def test_mcp_approval_in_the_core_follows_the_policy():
    for approve in (False, True):
        c = Call(CallConfig(quiet_timeout_s=0, mcp_approve=approve))
        c.receive_twilio(tw.Start("MZ1", "CA1", "AC1", {}), 0.0)
        c.realtime_opened('{"type":"session.update"}', 0.0)
        c.receive_realtime(rt.SessionUpdated(), 0.0)
        c.drain_realtime()
        c.drain_actions()
        c.receive_realtime(rt.McpApprovalRequest("mcpr_1", "crm", "delete", "{}"), 1.0)
        sent = [json.loads(m) for m in c.drain_realtime()]
        assert [m["type"] for m in sent] == ["conversation.item.create", "response.create"]
        assert sent[0]["item"]["approve"] is approve
        validate_client_event(sent[0])
        assert list(c.drain_actions()) == [McpApproval("mcpr_1", "crm", "delete", approve)]
        c.receive_realtime(rt.McpCallDone("i", "crm", "find", "{}", "ok", None), 2.0)
        assert list(c.drain_actions()) == [McpCall("i", "crm", "find", "{}", "ok", None)]


async def test_the_example_module_loads_and_routes(tmp_path):
    loaded = load_module("examples/agents.py")
    agents = Agents(loaded.agents, by_number={BILLING_NUMBER: "sales"}, route=loaded.route)
    assert agents.default.name == "default"
    assert agents["sales"].handoff_names == ("default", "billing")
    overdue = CallContext("CA1", from_number="+15550003333", to_number=BILLING_NUMBER)
    assert (await agents.choose(overdue))[0].name == "billing"
    other = CallContext("CA2", from_number="+15550009999", to_number=BILLING_NUMBER)
    assert await agents.choose(other) == (agents["sales"], "number")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"reasoning_effort": "extreme"}, "reasoning_effort"),
        ({"max_output_tokens": 0}, "max_output_tokens"),
        ({"speed": 3.0}, "speed"),
        ({"tool_choice": "maybe"}, "tool_choice"),
        ({"mcp_servers": [{"server_label": "x"}]}, "bad MCP server"),
    ],
)
def test_bad_agent_overrides_are_refused_at_start(override, message):
    with pytest.raises(ConfigError, match=message):
        Agents([Agent(name="a", instructions="A", **override)])


def test_serve_refuses_several_agents_and_none_chosen(tmp_path, capsys):
    from telephony.cli import build_setup

    path = tmp_path / "two.py"
    path.write_text(
        "from telephony import Agent\n"
        "a = Agent(name='sales', instructions='S')\n"
        "b = Agent(name='billing', instructions='B')\n"
    )
    with pytest.raises(SystemExit):
        build_setup(Settings(_env_file=None), str(path))
    assert "several agents (billing, sales) and none chosen" in capsys.readouterr().err
    _, agents = build_setup(Settings(_env_file=None, agent="sales"), str(path))
    assert agents is not None and agents.default.name == "sales"
    _, agents = build_setup(Settings(_env_file=None), None)
    assert agents is None  # no Agent: today's single agent from the settings


def test_the_simulator_prints_handoffs_and_mcp_calls():
    from telephony.simulate import _Printer

    lines: list[str] = []
    printer = _Printer(lines.append, 0.0)
    printer("CA1", AgentChanged("billing", "default", "handoff", "invoice"))
    printer("CA1", McpCall("i1", "crm", "find", "{}", None, "bad gateway"))
    assert "agent billing speaks now (handoff from default) (invoice)" in lines[0]
    assert "MCP crm.find: ERROR bad gateway" in lines[1]
