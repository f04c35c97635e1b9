"""JSON Lines read one way for every reader (the local engine, the Ray engine, `predict --input`).

A blank line is no row. A line is unreadable when it is not JSON or, where rows are records (a
table's rows), not a JSON object; the reader says why, and the caller decides what an unreadable line
costs (a bad row in a bulk job, an error in `predict`). Only the standard library: `predict` reads
JSON Lines without pyarrow.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def parse_line(line: str, records: bool = True) -> tuple[Any, str | None]:
    """(the line's value, None), or (None, why the line cannot be read); with `records`, a value that
    is not a JSON object cannot be read either."""
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        return None, f"not JSON ({exc.msg})"
    if records and not isinstance(value, dict):
        return None, "not a JSON object"
    return value, None


def read_lines(path: str | Path, records: bool = True) -> Iterator[tuple[int, Any, str | None]]:
    """(line number, value, why unreadable) for each non-blank line of `path`, lazily."""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, *parse_line(line, records)
