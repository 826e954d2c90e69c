"""The web console at ``/console``: live calls, history, one call's timeline, and a
browser phone. Server-rendered HTML (``pages.py``) with a little JavaScript
(``static/``), behind a session cookie the ``TELEPHONY_API_TOKEN`` login sets."""

from __future__ import annotations

from .routes import add_console_routes

__all__ = ["add_console_routes"]
