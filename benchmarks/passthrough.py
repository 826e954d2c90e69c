"""A minimal pass-through bridge, for the load benchmark only.

What the popular samples do, in the same stack (FastAPI + uvicorn + websockets):
``audio/pcmu`` both ways, Twilio's base64 payload strings forwarded without
decoding, stdlib ``json``, a mark after each delta, clear + truncate on
``speech_started`` estimated from the marks. No tools, no signatures, no
reconnects: it is the cost floor we compare against, not a product.

    python -m benchmarks.passthrough --port 0   (OPENAI_BASE_URL, OPENAI_API_KEY)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
from typing import Any

import uvicorn
import websockets
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()
BASE = os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1").replace("https", "wss").replace("http", "ws")
KEY = os.environ.get("OPENAI_API_KEY", "")


@app.websocket("/media-stream")
async def media_stream(ws: WebSocket) -> None:
    await ws.accept()
    stream_sid = None
    openai_ws: Any = None
    last_item = None
    sent_ms = 0
    marks: list[int] = []

    async def from_openai() -> None:
        nonlocal last_item, sent_ms
        async for message in openai_ws:
            event = json.loads(message)
            kind = event["type"]
            if kind == "response.output_audio.delta":
                if event["item_id"] != last_item:
                    last_item, sent_ms = event["item_id"], 0
                await ws.send_text(
                    json.dumps({"event": "media", "streamSid": stream_sid, "media": {"payload": event["delta"]}})
                )
                sent_ms += len(event["delta"]) * 3 // 4 // 8
                marks.append(sent_ms)
                await ws.send_text(
                    json.dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": "responsePart"}})
                )
            elif kind == "input_audio_buffer.speech_started" and marks and last_item:
                await ws.send_text(json.dumps({"event": "clear", "streamSid": stream_sid}))
                await openai_ws.send(
                    json.dumps(
                        {
                            "type": "conversation.item.truncate",
                            "item_id": last_item,
                            "content_index": 0,
                            "audio_end_ms": 0,
                        }
                    )
                )
                marks.clear()

    reader = None
    try:
        while True:
            data = json.loads(await ws.receive_text())
            if data["event"] == "media" and openai_ws is not None:
                await openai_ws.send(
                    json.dumps({"type": "input_audio_buffer.append", "audio": data["media"]["payload"]})
                )
            elif data["event"] == "start":
                stream_sid = data["start"]["streamSid"]
                params = data["start"].get("customParameters", {})
                model = "gpt-realtime-1.5"
                openai_ws = await websockets.connect(
                    f"{BASE}/realtime?model={model}",
                    additional_headers={"Authorization": f"Bearer {KEY}"},
                    compression=None,
                    max_size=None,
                )
                await openai_ws.send(
                    json.dumps(
                        {
                            "type": "session.update",
                            "session": {
                                "type": "realtime",
                                "model": model,
                                "output_modalities": ["audio"],
                                "instructions": params.get("instructions", "You are helpful."),
                                "audio": {
                                    "input": {
                                        "format": {"type": "audio/pcmu"},
                                        "turn_detection": {"type": "server_vad"},
                                    },
                                    "output": {"format": {"type": "audio/pcmu"}, "voice": "marin"},
                                },
                            },
                        }
                    )
                )
                reader = asyncio.create_task(from_openai())
            elif data["event"] == "mark" and marks:
                marks.pop(0)
            elif data["event"] == "stop":
                break
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        if reader is not None:
            reader.cancel()
        if openai_ws is not None:
            await openai_ws.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP_NODELAY on accept
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(2048)
    print(f"passthrough: listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, log_level="warning", lifespan="off", ws_per_message_deflate=False)
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))


if __name__ == "__main__":
    main()
