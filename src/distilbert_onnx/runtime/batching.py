"""Length-bucketed batching: sort rows by length, cut batches under a padded-token cap, pad each
batch to its own longest row, and hand results back in input order.

Inputs are consumed lazily in chunks, so an iterator of any size streams through in bounded memory.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

import numpy as np


T = TypeVar("T")
R = TypeVar("R")

DEFAULT_BATCH_SIZE = 32
# Cap on rows x longest row in one batch: bounds memory and keeps long rows in small batches.
DEFAULT_MAX_TOKENS = 32 * 512


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of up to `size` items, read lazily."""
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def plan_batches(
    lengths: Sequence[int], batch_size: int, max_tokens: int = DEFAULT_MAX_TOKENS, min_fill: float = 0.0
) -> list[list[int]]:
    """Indices grouped into batches of similar length, longest first.

    A batch holds at most `batch_size` rows and, unless a single row is longer, at most `max_tokens`
    padded tokens. With `min_fill`, a row that would leave the batch's real tokens below that share
    of its padded tokens starts a new batch (padding costs more than batching saves on a CPU).
    """
    order = sorted(range(len(lengths)), key=lambda index: lengths[index], reverse=True)
    batches: list[list[int]] = []
    real = 0
    for index in order:
        current = batches[-1] if batches else None
        length = lengths[index]
        padded = lengths[current[0]] * (len(current) + 1) if current else 0
        if current and len(current) < batch_size and padded <= max_tokens and real + length >= min_fill * padded:
            current.append(index)
            real += length
        else:
            batches.append([index])
            real = length
    return batches


def map_batches(
    units: Sequence[T],
    lengths: Sequence[int],
    run_batch: Callable[[list[T]], list[R]],
    batch_size: int,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    min_fill: float = 0.0,
) -> list[R]:
    """run_batch over length-bucketed batches of `units`; results in the order of `units`."""
    results: list[R | None] = [None] * len(units)
    for batch in plan_batches(lengths, batch_size, max_tokens, min_fill):
        for index, result in zip(batch, run_batch([units[i] for i in batch])):
            results[index] = result
    return results  # type: ignore[return-value]


def pad(rows: Sequence[Sequence[int]], pad_id: int, length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """input_ids and attention_mask (int64), right-padded to the longest row (or `length`)."""
    length = length or max(len(row) for row in rows)
    input_ids = np.full((len(rows), length), pad_id, dtype=np.int64)
    attention_mask = np.zeros((len(rows), length), dtype=np.int64)
    for i, row in enumerate(rows):
        input_ids[i, : len(row)] = row
        attention_mask[i, : len(row)] = 1
    return input_ids, attention_mask
