"""Example business tools for a small repair shop.

    telephony serve --tools examples/tools.py

Each function is plain Python: sync or async, typed parameters, a docstring.
The model sees the name, the docstring and a JSON schema built from the hints.
A parameter annotated ``CallContext`` gets the live call (never shown to the
model). Raise ``ToolError`` for a message the model should read out as is.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel

from telephony import CallContext, ToolError, tool

ORDERS: dict[str, dict[str, Any]] = {
    "A100": {"status": "ready for pickup", "item": "laptop screen repair", "phone": "+15550001111"},
    "A101": {"status": "waiting for parts", "item": "phone battery", "eta_days": 3, "phone": "+15550003333"},
}
BOOKINGS: list[dict] = []


class Service(Enum):
    SCREEN = "screen"
    BATTERY = "battery"
    DIAGNOSTIC = "diagnostic"


class Customer(BaseModel):
    name: str
    phone: str | None = None


@tool
def lookup_order(order_id: str, ctx: CallContext) -> dict:
    """Look up a repair order's status.

    Args:
        order_id: The order number the caller gives, like A100.
    """
    order = ORDERS.get(order_id.strip().upper())
    if order is None:
        raise ToolError(f"There is no order {order_id}. Ask the caller to check the number.")
    if order["phone"] != ctx.from_number:
        # Never read out someone else's order: the caller's number must match.
        return {"order_id": order_id, "status": "found, but it belongs to a different phone number"}
    return {"order_id": order_id, **{k: v for k, v in order.items() if k != "phone"}}


@tool(timeout=5)
async def book_appointment(
    day: Literal["monday", "tuesday", "wednesday", "thursday", "friday"],
    hour: int,
    service: Service,
    customer: Customer,
    ctx: CallContext,
    notes: str | None = None,
) -> dict:
    """Book a repair appointment. Opening hours are 9 to 17 on weekdays.

    Args:
        day: Day of the week.
        hour: Start hour on a 24-hour clock.
        service: What needs doing.
        customer: Who the booking is for.
        notes: Anything the technician should know.
    """
    if not 9 <= hour < 17:
        raise ToolError("We are open from 9 to 17. Offer the caller a time in that range.")
    await asyncio.sleep(0)  # a real shop would call its calendar API here
    booking = {
        "day": day,
        "hour": hour,
        "service": service.value,
        "name": customer.name,
        "phone": customer.phone or ctx.from_number,
        "notes": notes,
    }
    BOOKINGS.append(booking)
    return {"booked": True, "reference": f"B{len(BOOKINGS):03d}", "day": day, "hour": hour}


@tool
def opening_hours() -> str:
    """Today's opening hours."""
    today = dt.date.today().strftime("%A")
    return f"Today is {today}. We are open Monday to Friday, 9:00 to 17:00."


@tool
def keys_pressed(ctx: CallContext) -> str:
    """The keys the caller has pressed on their keypad during this call, in order."""
    return " ".join(ctx.dtmf) or "none"
