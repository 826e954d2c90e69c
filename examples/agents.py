"""A front desk that hands billing questions to a billing agent, and a
sales line with its own number.

    TELEPHONY_AGENTS_BY_NUMBER='{"+15551230000": "sales"}' \\
        telephony serve --tools examples/agents.py

The front desk (``default``) answers every number not listed above. It can hand
the caller to ``billing`` or ``sales`` (the model sees ``handoff_to_billing``
and ``handoff_to_sales`` tools); they can hand back. A handoff changes the
instructions and tools of the live Realtime session; the voice stays the one
that answered (a session cannot change its voice once it has spoken).
``route(ctx)`` below sends known debtors straight to billing.
"""

from __future__ import annotations

from telephony import Agent, CallContext, ToolError, tool

INVOICES = {
    "INV-1001": {"customer": "+15550001111", "amount": "149.00", "status": "due 2026-12-01"},
    "INV-1002": {"customer": "+15550003333", "amount": "89.50", "status": "overdue"},
}
OVERDUE_CALLERS = {inv["customer"] for inv in INVOICES.values() if inv["status"] == "overdue"}


@tool
def opening_hours() -> str:
    """The shop's opening hours."""
    return "Monday to Friday, 9 am to 6 pm; Saturday 10 am to 2 pm."


@tool
def find_invoice(invoice_id: str, ctx: CallContext) -> dict:
    """Look up one of the caller's invoices.

    Args:
        invoice_id: The invoice number, such as INV-1001.
    """
    invoice = INVOICES.get(invoice_id.strip().upper())
    if invoice is None or invoice["customer"] != ctx.from_number:
        raise ToolError("No invoice with that number for this phone number; ask the caller to check it.")
    return {"invoice_id": invoice_id.upper(), "amount": invoice["amount"], "status": invoice["status"]}


@tool
def quote(device: str) -> dict:
    """A price estimate for a repair.

    Args:
        device: The device to repair, such as "laptop screen".
    """
    return {"device": device, "estimate": "from 79.00", "valid_days": 30}


billing = Agent(
    name="billing",
    description="the billing desk (invoices, payments, refunds)",
    instructions=(
        "You are the billing desk of a repair shop, on the phone. Help with invoices and payments; "
        "read amounts clearly. For anything else, hand the caller back to the front desk."
    ),
    tools=[find_invoice],
    handoffs=["default"],
    reasoning_effort="medium",  # used by reasoning models (gpt-realtime-2 family)
)

sales = Agent(
    name="sales",
    description="sales (new repairs and quotes)",
    instructions="You sell repairs for a repair shop, on the phone. Give quotes; keep answers short.",
    tools=[quote],
    handoffs=["default", billing],
)

front_desk = Agent(
    name="default",
    instructions=(
        "You are the front desk of a repair shop, on the phone. Answer questions about opening hours. "
        "Hand billing questions to billing and new repairs to sales; say you are doing so first."
    ),
    tools=[opening_hours],
    handoffs=[billing, sales],
)


def route(ctx: CallContext) -> Agent | str | None:
    """Callers with an overdue invoice go straight to billing; None: the usual rules."""
    return billing if ctx.from_number in OVERDUE_CALLERS else None
