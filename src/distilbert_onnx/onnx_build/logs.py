"""Keep onnxruntime's graph tools from talking to the user's terminal, and keep what they said.

onnxruntime's optimizer and quantizer log through the root logger (warnings such as "Please
consider to run pre-processing" that mean nothing to a user of this tool). While they run, the
root logger's handlers are swapped for one that keeps the messages; the caller may use them, for
instance to explain why a fusion did not happen.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator


@contextlib.contextmanager
def captured_logs() -> Iterator[list[str]]:
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    root.handlers = [Keep()]
    root.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        root.handlers = handlers
        root.setLevel(level)
