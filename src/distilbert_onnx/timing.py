"""Latency measurement and synthetic inputs: `measure` times one graph (`benchmark`), `in_turns`
compares several (`quantize` choosing the faster int8 graph, variant="auto" choosing the fastest
variant)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from .tasks import TaskSpec


def synthetic_feeds(
    spec: TaskSpec, vocab_size: int, batch_size: int, sequence_length: int, seed: int = 0
) -> dict[str, np.ndarray]:
    """Random token ids of the given shape (multiple choice: tasks.CHOICES per row), no padding."""
    return spec.example_feeds(vocab_size, batch_size, sequence_length, seed)


def measure(
    run: Callable[[], object],
    *,
    warmup: int = 3,
    min_runs: int = 10,
    min_seconds: float = 1.0,
    max_runs: int = 10_000,
) -> np.ndarray:
    """Seconds per call of `run`: `warmup` untimed calls, then at least `min_runs` timed ones and
    at least `min_seconds` in all (at most `max_runs`)."""
    for _ in range(warmup):
        run()
    times = []
    started = time.perf_counter()
    while len(times) < max_runs and (len(times) < min_runs or time.perf_counter() - started < min_seconds):
        begin = time.perf_counter()
        run()
        times.append(time.perf_counter() - begin)
    return np.asarray(times)


def in_turns(runs: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median seconds per call of each of `runs`: one untimed call each, then `rounds` rounds in which
    they take turns call by call, so that each meets the same machine conditions."""
    for run in runs.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            begin = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - begin)
    return {name: float(np.median(values)) for name, values in times.items()}
