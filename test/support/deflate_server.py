#!/usr/bin/python3
"""A permessage-deflate echo server for autobahn_regress_SUITE: Python's
websockets (Debian's python3-websockets 10.4, legacy asyncio API), an
implementation of RFC 7692 independent of ours.

Listens on 127.0.0.1, port chosen by the OS, prints the port as the first
line on stdout, echoes every message, and serves until stdin is closed.

    deflate_server.py default     websockets' own defaults: it answers
                                  server_max_window_bits=12; client_max_window_bits=12
    deflate_server.py strict      no context takeover either way, server
                                  window 10, client window 9
"""

import asyncio
import logging
import os
import sys

import websockets
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory


async def echo(ws, _path):
    try:
        async for message in ws:
            await ws.send(message)
    except websockets.exceptions.ConnectionClosed:
        pass


async def main():
    logging.basicConfig(level=logging.CRITICAL)
    mode = sys.argv[1] if len(sys.argv) > 1 else "default"
    if mode == "strict":
        options = {"extensions": [ServerPerMessageDeflateFactory(
            server_no_context_takeover=True,
            client_no_context_takeover=True,
            server_max_window_bits=10,
            client_max_window_bits=9,
        )], "compression": None}
    else:
        options = {"compression": "deflate"}
    server = await websockets.serve(echo, "127.0.0.1", 0, max_size=None,
                                    ping_interval=None, **options)
    sys.stdout.write("%d\n" % server.sockets[0].getsockname()[1])
    sys.stdout.flush()
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.buffer.read)
    os._exit(0)


asyncio.run(main())
