#!/usr/bin/python3
"""An independent HTTP/1.1 server for the integration tests (test/http_SUITE.erl,
test/tls_SUITE.erl), from Python's standard library only: http.server's
ThreadingHTTPServer with protocol_version "HTTP/1.1" (keep-alive; requests on
one connection are read and answered one after the other, so pipelined
requests are answered in order).

    /usr/bin/python3 http_server.py [--port N] [--tls CERT KEY [--client-ca CA] [--tls-max 1.2]]

Listens on 127.0.0.1 (port 0 = chosen by the OS, the default), prints the
port as the first line on stdout, then serves until stdin is closed. With
--tls the listening socket is wrapped in an ssl.SSLContext (ALPN offers
"http/1.1"; the SNI name the client sent is recorded per connection);
--client-ca CA requires a client certificate signed by CA, --tls-max 1.2
caps the version. The handshake runs on a blocking socket, so OpenSSL's
alerts (e.g. a missing client certificate) reach the client.

The request socket is read unbuffered (rbufsize = 0), so that select() on it
tells whether the client had already written its next request (pipelining).

Paths (query strings as shown; the method does not matter unless said):

  /fixed             200, content-type text/plain, content-length 12,
                     body "Hello world!". HEAD: the same head, no body.
  /big?size=N        200, content-length N, byte i = i mod 256.
  /chunked           200, transfer-encoding chunked, written by hand in 3
                     chunks ("Hello ", "chunked ", "world!"), 50 ms apart.
                     With ?trailers=1: announces `trailer: x-checksum,
                     x-two` and ends with those two trailer fields
                     (x-checksum: 3a2b, x-two: 2).
  /status?code=N     status N. 204: no body, no content-length. 304: etag
                     and content-length 12, no body. Others: body "status N".
  /inform            raw: "100 Continue", then "103 Early Hints" with
                     `link: </style.css>; rel=preload`, then 200 with
                     content-length and body "informed".
  /close             200, connection: close, content-length, body
                     "closing"; the connection is closed after it. With
                     ?ms=M it sleeps M ms first.
  /eof               200, connection: close, no content-length: body
                     "until the end" delimited by closing the connection.
  /echo              any method: reads the request body (content-length, or
                     chunked decoded by hand, trailers dropped) and answers
                     200 with content-length and that body, plus
                     x-method, x-request-content-length and
                     x-request-transfer-encoding (the values received, all
                     of them joined by ", ", or "none").
  /headers           200, content-type application/json: {"headers":
                     {lower-cased name: value, repeated ones joined by
                     ", "}, "method", "path" (with query), "peer" (the
                     client's port, as a string), "version"}; compact, keys
                     sorted, every value a string.
  /slow?ms=M         sleeps M ms, then 200 with body "slow". With &where=body
                     it sends the head (content-length 4) at once and the
                     body after M ms.
  /pipe?i=I&ms=M     sleeps M ms, then 200 with body I and
                     x-pipelined: yes|no (whether more request bytes were
                     already waiting on the connection, i.e. the client had
                     written its next request before this response).
  /ws                a minimal RFC 6455 endpoint for the pipelining tests:
                     101 (sec-websocket-accept computed from the key), then
                     echoes text and binary frames (unfragmented), answers
                     pings, echoes a close and closes.
  /sni               (with --tls) 200 JSON {"alpn": protocol selected or
                     "none", "sni": server name the client sent or "none"}.
  /garbage           raw "NOT HTTP AT ALL\\r\\n\\r\\n", then close.
  /hugehead          200 with 3 headers of 30000 bytes each (head > 64 KiB).
  /manyheaders       200 with 150 small headers (under 4 KiB in all).
  /badlength         200 with content-length: abc.
  /badchunk          200 chunked whose first chunk size line is "zz".
  /midbody           200 with content-length 100, sends 10 bytes, waits
                     200 ms (?ms=M to change), then closes the connection.
  anything else      404, body "not found".
"""

import base64
import hashlib
import http.server
import json
import os
import select
import socket
import ssl
import struct
import sys
import threading
import time
from urllib.parse import parse_qs, urlsplit

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    rbufsize = 0  # unbuffered: select() on the socket sees pipelined requests
    server_version = "test-http-server"
    sys_version = ""

    def log_message(self, format, *args):
        pass

    # Any method (GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, PROPFIND...).
    def __getattr__(self, name):
        if name.startswith("do_"):
            return self.route
        raise AttributeError(name)

    # Helpers.

    def query(self):
        parts = urlsplit(self.path)
        return parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()}

    def raw(self, data):
        self.wfile.write(data)

    def read_exact(self, n):
        chunks = []
        while n > 0:
            data = self.rfile.read(n)
            if not data:
                raise ConnectionError("eof in body")
            chunks.append(data)
            n -= len(data)
        return b"".join(chunks)

    def read_line(self):
        line = self.rfile.readline(65537)
        if not line.endswith(b"\r\n"):
            raise ConnectionError("bad line")
        return line[:-2]

    def read_body(self):
        te = self.headers.get_all("transfer-encoding") or []
        if any("chunked" in v.lower() for v in te):
            body = []
            while True:
                size = int(self.read_line().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.read_line() != b"":
                        pass
                    return b"".join(body)
                body.append(self.read_exact(size))
                if self.read_line() != b"":
                    raise ConnectionError("bad chunk end")
        length = self.headers.get("content-length")
        if length is None:
            return b""
        return self.read_exact(int(length))

    def simple(self, status, body, ctype="text/plain", extra=()):
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.raw(body)

    def waiting(self):
        sock = self.connection
        if isinstance(sock, ssl.SSLSocket) and sock.pending() > 0:
            return True
        return bool(select.select([sock], [], [], 0)[0])

    # Routes.

    def route(self):
        path, q = self.query()
        fun = ROUTES.get(path)
        if fun is None:
            self.simple(404, b"not found")
        else:
            fun(self, q)

    def r_fixed(self, q):
        self.simple(200, b"Hello world!")

    def r_big(self, q):
        size = int(q.get("size", "0"))
        base = bytes(range(256))
        body = (base * (size // 256 + 1))[:size]
        self.simple(200, body, "application/octet-stream")

    def r_chunked(self, q):
        trailers = q.get("trailers") == "1"
        head = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n"
        if trailers:
            head += b"trailer: x-checksum, x-two\r\n"
        self.raw(head + b"\r\n")
        for chunk in (b"Hello ", b"chunked ", b"world!"):
            self.raw(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            time.sleep(0.05)
        if trailers:
            self.raw(b"0\r\nx-checksum: 3a2b\r\nx-two: 2\r\n\r\n")
        else:
            self.raw(b"0\r\n\r\n")

    def r_status(self, q):
        code = int(q.get("code", "200"))
        if code == 204:
            self.raw(b"HTTP/1.1 204 No Content\r\nx-status: 204\r\n\r\n")
        elif code == 304:
            self.raw(b"HTTP/1.1 304 Not Modified\r\netag: \"v1\"\r\ncontent-length: 12\r\n\r\n")
        else:
            self.simple(code, b"status %d" % code)

    def r_inform(self, q):
        self.raw(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.raw(b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n")
        self.raw(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 8\r\n\r\ninformed")

    def r_close(self, q):
        time.sleep(int(q.get("ms", "0")) / 1000)
        self.raw(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 7\r\n\r\nclosing")
        self.close_connection = True

    def r_eof(self, q):
        self.raw(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil ")
        time.sleep(0.05)
        self.raw(b"the end")
        self.close_connection = True

    def r_echo(self, q):
        cl = self.headers.get_all("content-length")
        te = self.headers.get_all("transfer-encoding")
        body = self.read_body()
        self.simple(200, body, "application/octet-stream", [
            ("x-method", self.command),
            ("x-request-content-length", ", ".join(cl) if cl else "none"),
            ("x-request-transfer-encoding", ", ".join(te) if te else "none"),
        ])

    def r_headers(self, q):
        headers = {}
        for name, value in self.headers.items():
            name = name.lower()
            headers[name] = headers[name] + ", " + value if name in headers else value
        doc = {"headers": headers, "method": self.command, "path": self.path,
               "peer": str(self.client_address[1]), "version": self.request_version}
        body = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
        self.read_body()
        self.simple(200, body, "application/json")

    def r_slow(self, q):
        ms = int(q.get("ms", "1000"))
        if q.get("where") == "body":
            self.raw(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n")
            time.sleep(ms / 1000)
            self.raw(b"slow")
        else:
            time.sleep(ms / 1000)
            self.simple(200, b"slow")

    def r_pipe(self, q):
        time.sleep(int(q.get("ms", "0")) / 1000)
        waiting = self.waiting()
        self.simple(200, q.get("i", "").encode(), extra=[("x-pipelined", "yes" if waiting else "no")])

    def r_sni(self, q):
        sock = self.connection
        alpn = sock.selected_alpn_protocol() if isinstance(sock, ssl.SSLSocket) else None
        sni = getattr(sock, "sni_name", None)
        body = json.dumps({"alpn": alpn or "none", "sni": sni or "none"},
                          sort_keys=True, separators=(",", ":")).encode()
        self.simple(200, body, "application/json")

    def r_garbage(self, q):
        self.raw(b"NOT HTTP AT ALL\r\n\r\n")
        self.close_connection = True

    def r_hugehead(self, q):
        head = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n"
        for i in range(3):
            head += b"x-huge-%d: %s\r\n" % (i, b"h" * 30000)
        self.raw(head + b"\r\n")
        self.close_connection = True

    def r_manyheaders(self, q):
        head = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n"
        for i in range(150):
            head += b"x-h-%d: v\r\n" % i
        self.raw(head + b"\r\n")
        self.close_connection = True

    def r_badlength(self, q):
        self.raw(b"HTTP/1.1 200 OK\r\ncontent-length: abc\r\n\r\nbody")
        self.close_connection = True

    def r_badchunk(self, q):
        self.raw(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")
        self.close_connection = True

    def r_midbody(self, q):
        self.raw(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789")
        time.sleep(int(q.get("ms", "200")) / 1000)
        self.close_connection = True

    # A minimal WebSocket echo (server frames are not masked).
    def r_ws(self, q):
        key = self.headers.get("sec-websocket-key", "")
        if self.headers.get("upgrade", "").lower() != "websocket" or not key:
            self.simple(400, b"not an upgrade")
            return
        accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest())
        self.raw(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n"
                 b"connection: Upgrade\r\nsec-websocket-accept: " + accept + b"\r\n\r\n")
        self.close_connection = True
        try:
            while True:
                b0, b1 = self.read_exact(2)
                opcode = b0 & 0x0F
                length = b1 & 0x7F
                if length == 126:
                    length = struct.unpack("!H", self.read_exact(2))[0]
                elif length == 127:
                    length = struct.unpack("!Q", self.read_exact(8))[0]
                mask = self.read_exact(4) if b1 & 0x80 else b"\0\0\0\0"
                data = bytes(c ^ mask[i % 4] for i, c in enumerate(self.read_exact(length)))
                if opcode == 0x9:
                    self.ws_frame(0xA, data)
                elif opcode == 0x8:
                    self.ws_frame(0x8, data)
                    return
                elif opcode in (0x1, 0x2):
                    self.ws_frame(opcode, data)
        except ConnectionError:
            return

    def ws_frame(self, opcode, data):
        n = len(data)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
        self.raw(head + data)


ROUTES = {
    "/fixed": Handler.r_fixed,
    "/big": Handler.r_big,
    "/chunked": Handler.r_chunked,
    "/status": Handler.r_status,
    "/inform": Handler.r_inform,
    "/close": Handler.r_close,
    "/eof": Handler.r_eof,
    "/echo": Handler.r_echo,
    "/headers": Handler.r_headers,
    "/slow": Handler.r_slow,
    "/pipe": Handler.r_pipe,
    "/sni": Handler.r_sni,
    "/ws": Handler.r_ws,
    "/garbage": Handler.r_garbage,
    "/hugehead": Handler.r_hugehead,
    "/manyheaders": Handler.r_manyheaders,
    "/badlength": Handler.r_badlength,
    "/badchunk": Handler.r_badchunk,
    "/midbody": Handler.r_midbody,
}


def linger(sock):
    try:
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(2)
        while sock.recv(65536):
            pass
    except OSError:
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        pass

    # A lingering close: FIN first, then read what the client still sends
    # (requests pipelined behind a `connection: close` response) until it
    # closes, so that the kernel does not answer them with a RST.
    def shutdown_request(self, request):
        linger(request)
        self.close_request(request)


class TLSServer(Server):
    """Handshakes in the connection's thread, not in accept()."""

    def __init__(self, address, handler, context):
        self.context = context
        super().__init__(address, handler)

    def finish_request(self, request, client_address):
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            try:
                tls.settimeout(2)
                sock = tls.unwrap()  # close_notify
            except (ssl.SSLError, OSError, ValueError):
                sock = None
            if sock is not None:
                linger(sock)
                sock.close()
            tls.close()


def main():
    args = sys.argv[1:]
    port = 0
    tls = None
    client_ca = None
    tls_max = None
    while args:
        if args[0] == "--port":
            port = int(args[1])
            args = args[2:]
        elif args[0] == "--tls":
            tls = (args[1], args[2])
            args = args[3:]
        elif args[0] == "--client-ca":
            client_ca = args[1]
            args = args[2:]
        elif args[0] == "--tls-max":
            tls_max = args[1]
            args = args[2:]
        else:
            sys.exit("unknown argument: %s" % args[0])
    if tls is None:
        server = Server(("127.0.0.1", port), Handler)
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls[0], tls[1])
        ctx.set_alpn_protocols(["http/1.1"])
        if client_ca is not None:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(client_ca)
        if tls_max == "1.2":
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2

        def sni(sock, name, _ctx):
            sock.sni_name = name

        ctx.sni_callback = sni
        server = TLSServer(("127.0.0.1", port), Handler, ctx)
    sys.stdout.write("%d\n" % server.server_address[1])
    sys.stdout.flush()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # Serve until stdin closes (EOF) or fails.
    try:
        sys.stdin.buffer.read()
    finally:
        os._exit(0)


if __name__ == "__main__":
    main()
