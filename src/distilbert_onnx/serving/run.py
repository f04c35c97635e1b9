"""Running the app under uvicorn for `distilbert-onnx serve`.

The socket is bound before uvicorn starts, so an occupied port is one error line and `--port 0`
takes a free port (the "listening" line says which). SIGTERM or SIGINT marks the server draining
(/health 503); uvicorn then stops accepting connections and waits for every request in flight,
the batchers run what is queued, and the process exits 0. Logging: one line per request from the
`distilbert_onnx.serve` logger at info level; uvicorn's own messages only from warning up.
"""

from __future__ import annotations

import logging
import signal
import socket
import sys
from collections.abc import Callable

import uvicorn

from ..errors import OptionError

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class DrainingServer(uvicorn.Server):
    """uvicorn's server, telling the app when shutdown begins and saying when it listens."""

    def __init__(self, config: uvicorn.Config, on_exit: Callable[[], None], on_ready: Callable[[], None]):
        super().__init__(config)
        self.on_exit = on_exit
        self.on_ready = on_ready

    def handle_exit(self, sig, frame) -> None:
        self.on_exit()
        super().handle_exit(sig, frame)

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


def serve_app(app, host: str, port: int, log_level: str = "info", echo: Callable[[str], None] = print) -> None:
    """Serve `app` (from build_app) until SIGTERM / SIGINT, then drain and return."""
    configure_logging(log_level)
    sock = bind(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=None)

    def draining() -> None:
        app.state.server.status = "draining"

    def ready() -> None:
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        echo(f"listening on http://{shown}:{bound_port} (stop with Ctrl+C or SIGTERM: requests in flight are answered first)")

    server = DrainingServer(config, on_exit=draining, on_ready=ready)
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
