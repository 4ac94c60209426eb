"""Run a sandbox API on 127.0.0.1 in a daemon thread, once per process.

State lives on disk (under the data folder), so every process that loads the definitions
(code server, run worker, each multiprocess step) can serve the same sandbox from its own thread.
"""

import json
import os
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from pipeline import locking
from pipeline.sandbox import disk

Answer = tuple[
    int, Any, dict[str, str]
]  # status, JSON payload (None: no body; bytes: text), headers
Route = tuple[str, re.Pattern[str], Callable[..., Any]]

_servers: dict[str, ThreadingHTTPServer] = {}
_lock = threading.Lock()


def serve(name: str, handler: type[BaseHTTPRequestHandler]) -> str:
    """Start `handler` on a free loopback port unless this process already did; return its URL."""
    with _lock:
        if name not in _servers:
            server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
            server.daemon_threads = True
            threading.Thread(
                target=server.serve_forever, name=f"sandbox-{name}", daemon=True
            ).start()
            _servers[name] = server
        host, port = _servers[name].server_address[:2]
        return f"http://{host}:{port}"


def _forget_inherited_servers() -> None:
    # A forked process (the executor's forkserver forks every step) inherits the parent's server
    # objects but not their threads: close its copies of the sockets and start its own on first use.
    for server in _servers.values():
        server.socket.close()
    _servers.clear()


os.register_at_fork(after_in_child=_forget_inherited_servers)


def stop_all() -> None:
    """Shut down every sandbox server this process started (tests use this between cases)."""
    with _lock:
        for server in _servers.values():
            server.shutdown()
            server.server_close()
        _servers.clear()


class SandboxHandler(BaseHTTPRequestHandler):
    """Every method goes to `answer`; replies are JSON; each request is logged on disk."""

    name = ""  # the sandbox's folder under the data folder, where its request log lives
    secret_params: frozenset[str] = frozenset()  # query parameters logged as ***

    def answer(self, method: str, path: str, query: dict[str, list[str]], raw: bytes) -> Answer:
        raise NotImplementedError

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PATCH(self):
        self._handle("PATCH")

    def do_PUT(self):
        self._handle("PUT")

    def do_DELETE(self):
        self._handle("DELETE")

    def log_message(self, format, *args):  # the request log on disk replaces stderr noise
        pass

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, payload, headers = self.answer(method, url.path.rstrip("/"), query, raw)
        shown = {k: ["***"] if k in self.secret_params else v for k, v in query.items()}
        locking.append_line(
            disk.folder(self.name) / "requests.jsonl",
            {"method": method, "path": url.path, "query": shown, "status": status,
             "pid": os.getpid()},
        )  # fmt: skip
        if isinstance(payload, bytes):  # a text reply (Looker's SQL result format)
            body, headers = payload, {"Content-Type": "text/plain; charset=utf-8", **headers}
        else:
            body = b"" if payload is None else json.dumps(payload).encode()
        if payload is not None and not isinstance(payload, bytes):
            headers = {"Content-Type": "application/json", **headers}
        self.send_response(status)
        for header, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(header, value)
        self.end_headers()
        self.wfile.write(body)


def requests_seen(name: str) -> list[dict[str, Any]]:
    """Every request any process's `name` sandbox answered, in order."""
    return locking.read_lines(disk.folder(name) / "requests.jsonl")


def route(routes: list[Route], method: str, path: str) -> tuple[Callable[..., Any], dict] | None:
    """The handler for a request and its URL parameters (unquoted), or None."""
    for route_method, pattern, handler in routes:
        match = pattern.fullmatch(path)
        if match and route_method == method:
            return handler, {k: unquote(v) for k, v in match.groupdict().items()}
    return None
