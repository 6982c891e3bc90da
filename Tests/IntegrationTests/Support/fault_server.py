#!/usr/bin/env python3
"""An HTTP receiver with fault modes, for the edge-agent integration tests.

It speaks the SPEC 5.1 delivery (a JSON array of CloudEvents) and misbehaves on request:

  POST /_control  {"faults": [{"status": 500, "count": 3, "retry_after": "2"}],
                   "poison": [17], "token": "secret", "flaky": 0.3, "reset": 2}
  GET  /_events   {"events": [...every accepted event, duplicates included...],
                   "posts": [{"t": 1.2, "status": 200, "count": 10}, ...]}

faults: the next POSTs answer these statuses (each `count` times), with Retry-After if given.
poison: a batch holding an event whose data.value is listed answers 422 naming it.
token:  a missing or wrong bearer token answers 401.
flaky:  the probability that a POST answers 500 (after the faults above).
reset:  the next N POSTs are read and then the connection is closed without an answer.
With --tls CERT KEY CA it speaks HTTPS and answers 403 to a delivery without a client
certificate signed by CA (the control endpoints need none).
Prints "PORT <n>" once it listens. Nagle is off, or keep-alive crawls.
"""
import json
import random
import signal
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
state = {"faults": [], "poison": set(), "token": None, "flaky": 0.0, "reset": 0, "tls": False}
RECORDED_HEADERS = ("Content-Type", "Authorization", "X-Api-Key")
events = []
posts = []
started = time.monotonic()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/_events":
            with lock:
                body = json.dumps({"events": events, "posts": posts}).encode()
            self.reply(200, body, {"Content-Type": "application/json"})
        else:
            self.reply(404)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        if self.path == "/_control":
            cfg = json.loads(raw or b"{}")
            with lock:
                if "faults" in cfg:
                    state["faults"] = [dict(f) for f in cfg["faults"]]
                if "poison" in cfg:
                    state["poison"] = set(cfg["poison"])
                if "token" in cfg:
                    state["token"] = cfg["token"]
                if "flaky" in cfg:
                    state["flaky"] = float(cfg["flaky"])
                if "reset" in cfg:
                    state["reset"] = int(cfg["reset"])
            self.reply(204)
            return
        with lock:
            status, headers, body = self.decide(raw)
            if status is None:
                posts.append({"t": time.monotonic() - started, "status": 0, "count": 0})
        if status is None:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.reply(status, body, headers)

    def decide(self, raw):
        """Runs under the lock: picks the answer and records what was accepted."""
        if state["reset"] > 0:
            state["reset"] -= 1
            return None, None, None
        try:
            batch = json.loads(raw)
        except ValueError:
            return 400, {}, b"not JSON"
        t = time.monotonic() - started
        if state["tls"] and not self.connection.getpeercert():
            posts.append({"t": t, "status": 403, "count": len(batch)})
            return 403, {}, b"client certificate required"
        token = state["token"]
        if token is not None and self.headers.get("Authorization") != "Bearer " + token:
            posts.append({"t": t, "status": 401, "count": len(batch)})
            return 401, {}, b"unauthorized"
        if state["faults"]:
            fault = state["faults"][0]
            fault["count"] -= 1
            if fault["count"] <= 0:
                state["faults"].pop(0)
            headers = {"Retry-After": fault["retry_after"]} if "retry_after" in fault else {}
            posts.append({"t": t, "status": fault["status"], "count": len(batch)})
            return fault["status"], headers, b"fault injected"
        if state["flaky"] and random.random() < state["flaky"]:
            posts.append({"t": t, "status": 500, "count": len(batch)})
            return 500, {}, b"flaky"
        bad = [e for e in batch if isinstance(e.get("data"), dict) and e["data"].get("value") in state["poison"]]
        if bad:
            posts.append({"t": t, "status": 422, "count": len(batch)})
            return 422, {"Content-Type": "application/json"}, json.dumps(
                {"error": "poison event", "ids": [e["id"] for e in bad]}).encode()
        events.extend(batch)
        headers = {k: self.headers.get(k) for k in RECORDED_HEADERS if self.headers.get(k) is not None}
        posts.append({"t": t, "status": 200, "count": len(batch), "headers": headers})
        return 200, {}, b""


def main():
    # A parent may hand its blocked signal mask down; SIGTERM must stop this server.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    if len(sys.argv) > 2 and sys.argv[2] == "--tls":
        cert, key, ca = sys.argv[3:6]
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        context.load_verify_locations(ca)
        context.verify_mode = ssl.CERT_OPTIONAL
        server.socket = context.wrap_socket(server.socket, server_side=True)
        state["tls"] = True
    print("PORT", server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
