"""A small scripted HTTP server on loopback, for testing the REST core's retries, pacing and errors.

A test queues replies per ``(method, path)`` (status, headers, body, delay, or a dropped connection) or
installs a handler; the server records every request it receives (with its arrival time).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False  # read the request, then close the connection without answering


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() on arrival
    target: str = ""  # the request line's target as sent, still percent-encoded (path and query)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


Handler = Callable[[Received], Reply]


class ScriptedServer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[tuple[str, str], deque[Reply]] = defaultdict(deque)
        self._handler: Handler | None = None
        self.received: list[Received] = []
        self.record = True
        server = self

        class _RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real API
            disable_nagle_algorithm = True  # else headers and body wait on the client's delayed ACK

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = Received(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query),
                    headers={k: v for k, v in self.headers.items()},
                    body=body,
                    at=time.monotonic(),
                    target=self.path,
                )
                if server.record:
                    with server._lock:
                        server.received.append(request)
                reply = server._reply_for(request)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.drop:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                payload = b""
                content_type = "application/json"
                if isinstance(reply.body, bytes | str):
                    payload = reply.body.encode() if isinstance(reply.body, str) else reply.body
                    content_type = "text/plain"
                elif reply.body is not None:
                    payload = json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _RequestHandler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def script(self, method: str, path: str, *replies: Reply) -> None:
        """Answer the next requests to ``method path`` with ``replies`` in order (then 404)."""
        with self._lock:
            self._scripts[(method.upper(), path)].extend(replies)

    def handle(self, handler: Handler | None) -> None:
        """Answer every unscripted request with ``handler(request)``."""
        self._handler = handler

    def count(self, method: str | None = None, path: str | None = None) -> int:
        with self._lock:
            return sum(
                1
                for r in self.received
                if (method is None or r.method == method) and (path is None or r.path == path)
            )

    def _reply_for(self, request: Received) -> Reply:
        with self._lock:
            queue = self._scripts.get((request.method, request.path))
            if queue:
                return queue.popleft()
        if self._handler is not None:
            return self._handler(request)
        return Reply(404, {"message": "not scripted", "code": "NOT_FOUND", "uuid": "test-404"})

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class FixedWindowLimit:
    """A server-side rate limit as docs/api-contract.md §3 describes it: ``limit`` requests per window of
    ``window`` whole seconds, announced in ``X-RateLimit-*``; past it, 429 with ``Retry-After``."""

    def __init__(self, limit: int, window: int = 1, answer: Reply | None = None) -> None:
        self.limit = limit
        self.window = window
        self.answer = answer or Reply(200, {"ok": True})
        self.refused = 0
        self.accepted = 0
        self.accepted_per_window: dict[int, int] = defaultdict(int)
        self._lock = threading.Lock()
        self._window_start = 0
        self._used = 0

    def __call__(self, request: Received) -> Reply:
        now = time.time()
        with self._lock:
            start = int(now // self.window) * self.window
            if start != self._window_start:
                self._window_start, self._used = start, 0
            reset = start + self.window
            if self._used >= self.limit:
                self.refused += 1
                retry_after = max(1, math.ceil(reset - now))
                return Reply(
                    429,
                    {"message": "rate limited", "code": "TOO_MANY_REQUESTS", "uuid": "rl"},
                    headers={**self._headers(0, reset), "Retry-After": str(retry_after)},
                )
            self._used += 1
            self.accepted += 1
            self.accepted_per_window[start] += 1
            remaining = self.limit - self._used
        return Reply(self.answer.status, self.answer.body, headers={**self._headers(remaining, reset)})

    def _headers(self, remaining: int, reset: int) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(reset),
        }


def paged_list(items: list[Any], base_url: str) -> Handler:
    """A handler serving ``items`` in pages with ``Link: <...>; rel="next"`` (docs/api-contract.md §3)."""

    def handler(request: Received) -> Reply:
        per_page = int(request.query.get("per_page", ["25"])[0])
        page = int(request.query.get("page", ["1"])[0])
        chunk = items[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < len(items):
            headers["Link"] = f'<{base_url}{request.path}?per_page={per_page}&page={page + 1}>; rel="next"'
        return Reply(200, chunk, headers=headers)

    return handler


def main() -> None:
    """Serve on loopback in its own process (benchmarks measure the client's CPU apart from the server's).

    Prints the port on stdout; ``GET /_stats`` answers the limit's counters.
    """
    import argparse
    import sys

    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=0, help="requests per window (0: no limit)")
    parser.add_argument("--window", type=int, default=1, help="window length, whole seconds")
    args = parser.parse_args()
    limit = FixedWindowLimit(args.limit, args.window) if args.limit else None

    def handler(request: Received) -> Reply:
        if request.path == "/_stats":
            if limit is None:
                return Reply(200, {})
            per_window = {str(k): v for k, v in limit.accepted_per_window.items()}
            return Reply(
                200, {"refused": limit.refused, "accepted": limit.accepted, "per_window": per_window}
            )
        return limit(request) if limit is not None else Reply(200, {"ok": True})

    with ScriptedServer() as server:
        server.record = False
        server.handle(handler)
        print(server._server.server_address[1], flush=True)
        sys.stdin.read()  # until the parent closes our stdin


if __name__ == "__main__":
    main()
