#!/usr/bin/env python3
"""tests/http_server.py: an HTTP/1.1 keep-alive server on loopback for tests/it_http.sh.

    http_server.py PORTFILE

Listens on 127.0.0.1, an ephemeral port, written to PORTFILE once it accepts. A thread
per connection; connections are kept alive. What it counts is at GET /stats, as JSON:
connections accepted, requests, the most requests in progress at once, and the times
(monotonic seconds) each key of /flaky was asked.

    /ok                         200 "hello"
    /echo                       200, the request's method, a blank, its body
    /header?name=N              200, the value of request header N
    /status?code=C              C, body "status C"
    /flaky?key=K&fail=N&after=S the first N asks of key K: 503 (or code=C: C) with
          [&code=C]             Retry-After: S, then 200 "recovered K"
    /slow?ms=M                  200 "slow" after M milliseconds
    /big?bytes=B                200 with B bytes of 'x'
    /hold?ms=M                  the same as /slow: counted in max_inflight
    /redirect?to=URL            302 to URL
    /stats                      the counters, as JSON (neither it nor its connection
                                counted)
"""

import http.server
import json
import os
import socketserver
import sys
import threading
import time
import urllib.parse

lock = threading.Lock()
state = {"connections": 0, "requests": 0, "inflight": 0, "max_inflight": 0,
         "flaky": {}}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        with lock:
            state["connections"] += 1

    def log_message(self, fmt, *args):
        pass

    def reply(self, code, body, headers=()):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.handle_any()

    def do_POST(self):
        self.handle_any()

    def do_PUT(self):
        self.handle_any()

    def do_DELETE(self):
        self.handle_any()

    def handle_any(self):
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n > 0 else b""
        if u.path == "/stats":
            with lock:
                # The connection asking is the test's, not one to count.
                if not getattr(self, "stats_conn", False):
                    self.stats_conn = True
                    state["connections"] -= 1
                self.reply(200, json.dumps({k: state[k] for k in
                           ("connections", "requests", "max_inflight", "flaky")}))
            return
        with lock:
            state["requests"] += 1
            state["inflight"] += 1
            state["max_inflight"] = max(state["max_inflight"], state["inflight"])
        try:
            self.route(u.path, q, body)
        finally:
            with lock:
                state["inflight"] -= 1

    def route(self, path, q, body):
        if path == "/ok":
            self.reply(200, "hello")
        elif path == "/echo":
            self.reply(200, self.command.encode() + b" " + body)
        elif path == "/header":
            self.reply(200, self.headers.get(q.get("name", ""), ""))
        elif path == "/status":
            code = int(q.get("code", "200"))
            self.reply(code, "status %d" % code)
        elif path == "/flaky":
            key = q.get("key", "")
            with lock:
                asks = state["flaky"].setdefault(key, [])
                asks.append(time.monotonic())
                n = len(asks)
            if n <= int(q.get("fail", "1")):
                self.reply(int(q.get("code", "503")), "busy",
                           [("Retry-After", q.get("after", "1"))])
            else:
                self.reply(200, "recovered " + key)
        elif path in ("/slow", "/hold"):
            time.sleep(int(q.get("ms", "0")) / 1000.0)
            self.reply(200, "slow")
        elif path == "/headers":
            # Headers for http_output = "response": a type with a blank, a header
            # twice, a value with a quote, one in Latin-1 (not UTF-8).
            self.reply(200, q.get("body", "hi \"there\"\n"),
                       [("Content-Type", "text/plain; charset=utf-8"),
                        ("X-Rate", "7"), ("X-Tag", "a"), ("X-Tag", 'b"c'),
                        ("X-Latin", "caf\xe9")])
        elif path == "/binary":
            self.reply(200, b"\xff\x00ab", [("Content-Type", "application/octet-stream")])
        elif path == "/big":
            self.reply(200, b"x" * int(q.get("bytes", "0")))
        elif path == "/redirect":
            self.reply(302, "", [("Location", q.get("to", "/ok"))])
        else:
            self.reply(404, "no such page")


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 512


def main():
    srv = Server(("127.0.0.1", 0), Handler)
    tmp = sys.argv[1] + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, sys.argv[1])
    srv.serve_forever()


if __name__ == "__main__":
    main()
