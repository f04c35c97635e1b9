"""The server's limits: how large a model batch grows, how much padding it may hold and how long it
waits to fill, how many inputs and body bytes one request may carry, how many rows may wait for
the model, and how long a client may take to send a request.

Every limit is checked here once, when the app is built, so a bad value fails at start-up with one
line, never at the first request.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import OptionError, positive_int
from ..runtime.batching import DEFAULT_MAX_TOKENS


@dataclass(frozen=True)
class Limits:
    # Padded tokens (rows x longest row) in one model call, and the tokens one batch takes from the queue.
    max_batch_tokens: int = DEFAULT_MAX_TOKENS
    # Share of real (not padding) tokens each model call keeps at least: rows of very different
    # lengths go through in separate calls, since on a CPU padding costs more than batching saves.
    min_batch_fill: float = 0.8
    # How long the worker waits for a batch to fill (as many rows as its last batch had) before it runs.
    max_wait_ms: float = 5.0
    # Inputs in one request (the length of an `inputs` / `input` list).
    max_inputs: int = 256
    # Bytes of one request body.
    max_body_bytes: int = 1_000_000
    # Rows waiting for the model (one per text; more for long question-answering or token-classification
    # inputs cut into windows); a request that would go beyond it is refused with 503.
    max_queue: int = 1024
    # Seconds a client may take to send a whole request (a body that stalls gets 408), and that a
    # connection may stay open without sending one (it is closed).
    client_timeout_s: float = 30.0

    def __post_init__(self):
        for name in ("max_batch_tokens", "max_inputs", "max_body_bytes", "max_queue"):
            positive_int(name, getattr(self, name))
        if not isinstance(self.max_wait_ms, (int, float)) or isinstance(self.max_wait_ms, bool) or not self.max_wait_ms >= 0:
            raise OptionError(f"max_wait_ms must be a number of milliseconds >= 0, got {self.max_wait_ms!r}")
        if not isinstance(self.min_batch_fill, (int, float)) or isinstance(self.min_batch_fill, bool) or not 0 <= self.min_batch_fill <= 1:
            raise OptionError(f"min_batch_fill must be a share between 0 and 1, got {self.min_batch_fill!r}")
        if not isinstance(self.client_timeout_s, (int, float)) or isinstance(self.client_timeout_s, bool) or not self.client_timeout_s > 0:
            raise OptionError(f"client_timeout_s must be a number of seconds > 0, got {self.client_timeout_s!r}")

    def as_dict(self) -> dict:
        return asdict(self)
