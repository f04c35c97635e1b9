"""Running the app under uvicorn for `distilbert-onnx serve`.

The socket is bound before uvicorn starts, so an occupied port is one error line and `--port 0`
takes a free port (the "listening" line says which). SIGTERM or SIGINT marks the server draining
(/health 503); uvicorn then stops accepting connections and waits for the requests in flight, for
at most the drain timeout, the batchers run what is queued, and the process exits 0. A second
signal stops it at once; either way each request cut off is one log line (drain.py). Connections
idle for longer than the client timeout are closed. Logging: one line per request from the
`distilbert_onnx.serve` logger at info level; uvicorn's own messages only from warning up.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sys
from collections.abc import Callable

import uvicorn

from ..errors import OptionError
from .drain import DEFAULT_DRAIN_TIMEOUT_S, IdleConnections

logger = logging.getLogger("distilbert_onnx.serve")

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class DrainingServer(uvicorn.Server):
    """uvicorn's server, telling the app when shutdown begins and saying when it listens."""

    def __init__(self, config: uvicorn.Config, on_exit: Callable[[], None], on_ready: Callable[[], None],
                 client_timeout_s: float):
        super().__init__(config)
        self.on_exit = on_exit
        self.on_ready = on_ready
        self.idle = IdleConnections(client_timeout_s)

    def handle_exit(self, sig, frame) -> None:
        if self.should_exit and not self.force_exit:
            logger.warning("a second signal: stopping now, without waiting for the requests in flight")
            self.force_exit = True
        self.on_exit()
        super().handle_exit(sig, frame)

    async def shutdown(self, sockets=None) -> None:
        await super().shutdown(sockets=sockets)
        if self.force_exit:  # uvicorn leaves the requests and the app's lifespan to be killed with the loop
            tasks = list(self.server_state.tasks)
            for task in tasks:
                task.cancel()  # drain.CutOffGuard logs each one and answers 503
            if tasks:
                await asyncio.wait(tasks, timeout=5)
            await self.lifespan.shutdown()

    async def on_tick(self, counter: int) -> bool:
        if counter % 10 == 0:  # a tick is 0.1 s
            self.idle.check(self.server_state.connections)
        return await super().on_tick(counter)

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self.on_ready()


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket on host:port, or an OptionError saying why not."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # asyncio sets TCP_NODELAY only then
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        raise OptionError(f"cannot listen on {host}:{port} ({exc.strerror or exc}): pick another --host or --port") from None
    return sock


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    for name, name_level in (("distilbert_onnx", level.upper()), ("uvicorn", "WARNING")):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(name_level)
        logger.propagate = False


def serve_app(app, host: str, port: int, log_level: str = "info", echo: Callable[[str], None] = print,
              drain_timeout_s: float = DEFAULT_DRAIN_TIMEOUT_S) -> None:
    """Serve `app` (from build_app) until SIGTERM / SIGINT, then drain for at most `drain_timeout_s`
    seconds and return."""
    configure_logging(log_level)
    sock = bind(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on",
                            timeout_graceful_shutdown=drain_timeout_s)

    def draining() -> None:
        app.state.server.status = "draining"

    def ready() -> None:
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        echo(f"listening on http://{shown}:{bound_port} (stop with Ctrl+C or SIGTERM: requests in flight are answered first)")

    server = DrainingServer(config, on_exit=draining, on_ready=ready,
                            client_timeout_s=app.state.server.limits.client_timeout_s)
    # uvicorn re-raises the signal it stopped on once it is done; these handlers make that a no-op,
    # so a drained server exits 0 instead of dying of the signal.
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in SIGNALS}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
    if not server.started:
        raise OptionError("the server did not start: see the log above")
