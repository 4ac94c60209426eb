"""Run a sandbox API on 127.0.0.1 in a daemon thread, once per process.

State lives on disk (under the data folder), so every process that loads the definitions
(code server, run worker, each multiprocess step) can serve the same sandbox from its own thread.
"""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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


def stop_all() -> None:
    """Shut down every sandbox server this process started (tests use this between cases)."""
    with _lock:
        for server in _servers.values():
            server.shutdown()
            server.server_close()
        _servers.clear()
