#!/usr/bin/python3
"""An independent WebSocket server for the integration tests.

Runs with Debian's /usr/bin/python3 and its python3-websockets (10.4), legacy
asyncio API. Listens on 127.0.0.1, port chosen by the OS, prints the port as
the first line on stdout, then serves until stdin is closed (it dies with the
Erlang port, the Elixir Port or the shell pipe that started it).

    ws_server.py [--tls CERT KEY [--client-ca CA] [--tls-max 1.2]]

With --tls the same server is served over TLS (wss) with that certificate
chain and key; --client-ca CA requires a client certificate signed by CA;
--tls-max 1.2 caps the TLS version (so that a missing client certificate
fails inside the handshake). Without --tls nothing changes.

Paths (a query string may follow each; `id=X` tags the connection so that
`/lastclose?id=X` can report how it ended):

  /echo                 echoes every text and binary message as is.
  /proto                subprotocols ["mychat", "other"]; sends the selected
                        subprotocol name as a text message, then echoes.
  /headers              sends one text message, the JSON of the request headers
                        (names lower-cased, compact, sorted), then closes (1000).
  /close                after the first message received, closes 4000 "bye".
  /push?n=N&size=S      sends N binary messages of S bytes (byte i = i mod 256;
                        with &seq=1, message k has byte i = (i + k) mod 256,
                        so order can be checked), then echoes.
  /frag                 sends the text "Hello!" in 3 fragments, then the binary
                        <<1,2,3>> in 2 fragments, then echoes.
  /ping                 sends a ping "srv", waits for the pong, sends the text
                        "pong:srv", then echoes.
  /badutf8              sends a text frame that is not UTF-8 (FF FE), then
                        waits for the client's close.
  /drop                 after the first message received, closes the TCP
                        connection without a close frame.
  /lastclose[?id=X]     sends one text message: the close code the client sent
                        on the connection tagged X (waiting up to 10 s for that
                        connection to end), or on the last connection that
                        ended; 1006 means no close frame was received, 1005 an
                        empty close frame; "none" when nothing was recorded.
                        Then closes (1000).
  anything else         refused: HTTP 404, content-type text/plain, body
                        "not found".
"""

import asyncio
import http
import json
import logging
import os
import ssl
import sys
from urllib.parse import parse_qs, urlsplit

import websockets
from websockets.exceptions import ConnectionClosed
from websockets.frames import OP_TEXT
from websockets.legacy.server import WebSocketServerProtocol

KNOWN = {"/echo", "/proto", "/headers", "/close", "/push", "/lastclose",
         "/frag", "/ping", "/badutf8", "/drop"}

# Close codes received from clients: the last one, and per `id`.
last_close = {"code": None}
closes = {}          # id -> close code
close_events = {}    # id -> asyncio.Event set when that connection ended


def split(path):
    parts = urlsplit(path)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    return parts.path, query


def event_for(conn_id):
    ev = close_events.get(conn_id)
    if ev is None:
        ev = close_events[conn_id] = asyncio.Event()
    return ev


class Protocol(WebSocketServerProtocol):
    # Only /proto negotiates a subprotocol; elsewhere an offer is ignored.
    def select_subprotocol(self, client_subprotocols, server_subprotocols):
        if split(self.path)[0] != "/proto":
            return None
        return super().select_subprotocol(client_subprotocols, server_subprotocols)

    # websockets answers a client's close from its reading task, possibly
    # before the handler took (and echoed) the messages received before the
    # close. Answer only once those are taken (bounded: 5 s), as a server
    # that processes frames in order would; an echo handler writes the echo
    # in the same step as it takes the message.
    async def write_close_frame(self, close, data=None):
        if self.close_rcvd is not None and self.close_sent is None:
            for _ in range(500):
                if not self.messages:
                    break
                await asyncio.sleep(0.01)
        await super().write_close_frame(close, data)


async def process_request(path, request_headers):
    if split(path)[0] in KNOWN:
        return None
    return (http.HTTPStatus.NOT_FOUND, [("Content-Type", "text/plain")], b"not found")


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def handler(ws, path):
    route, query = split(path)
    conn_id = query.get("id")
    try:
        if route == "/echo":
            await echo(ws)
        elif route == "/proto":
            await ws.send(ws.subprotocol or "")
            await echo(ws)
        elif route == "/headers":
            headers = {}
            for name, value in ws.request_headers.raw_items():
                name = name.lower()
                headers[name] = headers[name] + ", " + value if name in headers else value
            await ws.send(json.dumps(headers, sort_keys=True, separators=(",", ":")))
            await ws.close(1000)
        elif route == "/close":
            await ws.recv()
            await ws.close(4000, "bye")
        elif route == "/push":
            n = int(query.get("n", "1"))
            size = int(query.get("size", "0"))
            seq = query.get("seq") == "1"
            base = bytes(i % 256 for i in range(size + 256))
            for k in range(n):
                off = k % 256 if seq else 0
                await ws.send(base[off:off + size])
            await echo(ws)
        elif route == "/frag":
            await ws.send(["Hel", "lo", "!"])
            await ws.send([b"\x01", b"\x02\x03"])
            await echo(ws)
        elif route == "/ping":
            pong = await ws.ping(b"srv")
            await asyncio.wait_for(pong, 10)
            await ws.send("pong:srv")
            await echo(ws)
        elif route == "/badutf8":
            await ws.write_frame(True, OP_TEXT, b"\xff\xfe")
            await ws.wait_closed()
        elif route == "/drop":
            await ws.recv()
            ws.transport.close()
        elif route == "/lastclose":
            wanted = query.get("id")
            if wanted is None:
                code = last_close["code"]
            else:
                try:
                    await asyncio.wait_for(event_for(wanted).wait(), 10)
                except asyncio.TimeoutError:
                    pass
                code = closes.get(wanted)
            await ws.send("none" if code is None else str(code))
            await ws.close(1000)
    except ConnectionClosed:
        pass
    finally:
        if route != "/lastclose":
            await ws.wait_closed()
            code = ws.close_code
            last_close["code"] = code
            if conn_id is not None:
                closes[conn_id] = code
                event_for(conn_id).set()


def tls_context(args):
    """None without --tls; else a server SSLContext built from the options."""
    if not args:
        return None
    opts = {}
    while args:
        if args[0] == "--tls":
            opts["tls"] = (args[1], args[2])
            args = args[3:]
        elif args[0] == "--client-ca":
            opts["client_ca"] = args[1]
            args = args[2:]
        elif args[0] == "--tls-max":
            opts["tls_max"] = args[1]
            args = args[2:]
        else:
            sys.exit("unknown argument: %s" % args[0])
    if "tls" not in opts:
        sys.exit("--client-ca and --tls-max need --tls")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*opts["tls"])
    if "client_ca" in opts:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(opts["client_ca"])
    if opts.get("tls_max") == "1.2":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


async def main():
    logging.basicConfig(level=logging.CRITICAL)
    loop = asyncio.get_running_loop()
    tls = tls_context(sys.argv[1:])
    extra = {} if tls is None else {"ssl": tls}
    server = await websockets.serve(
        handler,
        "127.0.0.1",
        0,
        create_protocol=Protocol,
        process_request=process_request,
        subprotocols=["mychat", "other"],
        max_size=None,
        max_queue=None,
        compression=None,
        ping_interval=None,
        close_timeout=5,
        **extra,
    )
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write("%d\n" % port)
    sys.stdout.flush()
    # Serve until stdin closes (EOF) or fails.
    await loop.run_in_executor(None, sys.stdin.buffer.read)
    os._exit(0)


if __name__ == "__main__":
    asyncio.run(main())
