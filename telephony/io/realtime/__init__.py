"""Talking to the OpenAI Realtime API: the WebSocket client (``client.py``)."""

from .client import RealtimeConnection, RealtimeConnector, WebsocketsConnection, WebsocketsConnector

__all__ = ["RealtimeConnection", "RealtimeConnector", "WebsocketsConnection", "WebsocketsConnector"]
