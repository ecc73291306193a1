#!/usr/bin/env python3
"""Interop peer: Python `websockets` (Debian python3-websockets) on 127.0.0.1.

Paths: /echo echoes text and binary; /close/CODE/REASON closes at once with that code.
Subprotocols: chooses the first of the client's offer that it speaks ("chat.v2", "chat.v1").
Prints "port N" when listening, and "closed CODE REASON" for every close the client starts.
"""
import asyncio
import sys

import websockets


async def handler(ws, path=None):
    path = path if path is not None else ws.path
    if path.startswith("/close/"):
        _, _, code, reason = path.split("/", 3)
        await ws.close(int(code), reason)
        return
    try:
        async for msg in ws:
            await ws.send(msg)
    except websockets.ConnectionClosed:
        pass
    if ws.close_code is not None:
        print(f"closed {ws.close_code} {ws.close_reason}", flush=True)


async def main():
    async with websockets.serve(handler, "127.0.0.1", 0, subprotocols=["chat.v2", "chat.v1"],
                                max_size=None, compression=None, ping_interval=None) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"port {port}", flush=True)
        await asyncio.sleep(120)  # bounded life: the test kills it long before


asyncio.run(main())
