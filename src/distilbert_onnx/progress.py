"""Named, timed steps of a long job, reported to a callback as they start and end."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator


class Stages:
    """`with stages("export to ONNX"): ...` times the block and tells `echo` about it.

    Without `echo` it only records the durations (in `seconds`), so library calls stay quiet.
    """

    def __init__(self, echo: Callable[[str], None] | None = None):
        self.echo = echo
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if self.echo:
            self.echo(f"- {name} ...")
        start = time.perf_counter()
        yield
        elapsed = time.perf_counter() - start
        self.seconds[name] = round(elapsed, 3)
        if self.echo:
            self.echo(f"  done in {elapsed:.2f} s")
