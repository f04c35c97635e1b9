"""Helpers shared by the server tests: a real uvicorn server on a free localhost port, in a thread."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import uvicorn

import distilbert_onnx


# The source tree of the package under test, for the processes a test starts (the same code as the test's).
SRC = str(Path(distilbert_onnx.__file__).resolve().parents[1])


def start_server(*arguments: str, env: dict | None = None) -> tuple[subprocess.Popen, str]:
    """`distilbert-onnx serve ARGUMENTS --port 0` as a real process; (it, its base URL) once it listens."""
    env = {**os.environ, **(env or {}), "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = subprocess.Popen([sys.executable, "-m", "distilbert_onnx.cli", "serve", *arguments, "--port", "0"],
                               stderr=subprocess.PIPE, text=True, env=env)
    for line in process.stderr:
        if match := re.search(r"listening on (http://\S+)", line):
            return process, match.group(1)
    raise AssertionError(f"the server did not start (exit {process.wait()})")


@contextlib.contextmanager
def running(app):
    """Serve `app` on a free 127.0.0.1 port until the block ends; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # so asyncio sets TCP_NODELAY
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def wait_ready(client, url: str) -> None:
    deadline = time.monotonic() + 30
    while client.get(f"{url}/health").status_code != 200:
        assert time.monotonic() < deadline, "the server did not become ready"
        time.sleep(0.01)


def metric(text: str, name: str, **labels) -> float:
    """The value of one sample of a Prometheus text page (0 when absent)."""
    for line in text.splitlines():
        match = re.fullmatch(r"(\w+)(?:\{(.*)\})? (\S+)", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if all(found.get(key) == str(value) for key, value in labels.items()):
            return float(match.group(3))
    return 0.0


def jsonable(value):
    """What a pipeline result looks like after a trip through JSON."""
    return json.loads(json.dumps(value, default=lambda v: v.tolist()))
