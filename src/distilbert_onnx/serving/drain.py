"""Clients that hold the server: idle or slow connections, and requests still running at shutdown.

- A connection that has sent no complete request for `client_timeout_s` (one opened and left idle,
  or one trickling its headers a byte at a time) is closed by `IdleConnections`, checked once a
  second. uvicorn itself closes a keep-alive connection idle after its answer (timeout_keep_alive).
  A body that does not arrive in time is the endpoint's to refuse (requests.read_json: 408).
- At shutdown uvicorn waits for the requests in flight for at most the drain timeout, then cancels
  them; a second signal cancels them at once. `CutOffGuard` turns each cancelled request into one
  warning line naming it and, where no answer was started, a 503 JSON answer, never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import weakref

logger = logging.getLogger("distilbert_onnx.serve")

DEFAULT_DRAIN_TIMEOUT_S = 25.0  # below Kubernetes' default 30 s grace, so the log says what was cut off


class IdleConnections:
    """Closes connections that have made no progress on a request for `timeout` seconds."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.seen: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # connection -> (its cycle, since)

    def check(self, connections) -> None:
        now = time.monotonic()
        closed = 0
        for connection in list(connections):
            cycle = getattr(connection, "cycle", None)
            if cycle is not None and not cycle.response_complete:
                self.seen.pop(connection, None)  # a request is being answered
                continue
            last_cycle, since = self.seen.get(connection, (None, now))
            if last_cycle is not cycle:
                since = now
            self.seen[connection] = (cycle, since)
            transport = getattr(connection, "transport", None)
            if now - since >= self.timeout and transport is not None and not transport.is_closing():
                transport.close()
                closed += 1
        if closed:
            logger.info("closed %d connection(s) that sent no complete request for %g s (--client-timeout)",
                        closed, self.timeout)


class CutOffGuard:
    """ASGI middleware: a request cancelled at shutdown is logged and, if unanswered, answered 503."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracked(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except asyncio.CancelledError:
            client = scope.get("client") or ("?", 0)
            logger.warning("cut off at shutdown: %s %s from %s:%s was not answered (--drain-timeout passed, or a "
                           "second signal)", scope["method"], scope["path"], *client[:2])
            if not started:
                await _unavailable(send)


async def _unavailable(send) -> None:
    body = json.dumps({"error": "the server is shutting down: retry on another instance", "type": "unavailable"}).encode()
    try:
        await send({"type": "http.response.start", "status": 503,
                    "headers": [(b"content-type", b"application/json"), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
    except Exception:  # the connection is already gone
        pass
