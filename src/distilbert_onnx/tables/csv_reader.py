"""CSV tables read record by record, so that a bad row costs that row only, named by its number.

A record that is not valid CSV (an unterminated quote, text after a closing quote, a quote still open
at the end of the file), that has more or fewer values than the header has columns, or whose needed
values are not UTF-8 is a bad row: it becomes a row whose values are all missing, with the reason
(tables.UNREADABLE), exactly as a bad JSON Lines line does, and reading goes on at the line after
the one it started on. A value quoted over several lines is one record, as in any CSV.

The columns a task reads as text stay text; other needed columns (ids, kept columns) take the type
their values in the first chunk share (integer, float, boolean, else text), as pyarrow's CSV reader
would infer it; a later value that does not fit that type is one error naming the column and row.
An empty cell is missing.
"""

from __future__ import annotations

import csv
import re
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from ..errors import OptionError

_INTEGER = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|nan)", re.IGNORECASE)
_BOOLEANS = {"true": True, "false": False, "True": True, "False": False, "TRUE": True, "FALSE": False}
_CONVERT = {pa.int64(): int, pa.float64(): float, pa.bool_(): _BOOLEANS.__getitem__, pa.string(): str}


class _Lines:
    """The file's lines as text, numbered, with lines handed back to be read again."""

    def __init__(self, handle):
        self.handle = handle
        self.pending: deque[tuple[int, bytes]] = deque()
        self.number = 0
        self.taken: list[tuple[int, bytes]] = []  # the lines of the record being read

    def __iter__(self):
        return self

    def __next__(self) -> str:
        if self.pending:
            number, raw = self.pending.popleft()
        else:
            raw = self.handle.readline()
            if not raw:
                raise StopIteration
            self.number += 1
            number = self.number
        self.taken.append((number, raw))
        return raw.decode("utf-8", "surrogateescape")

    def give_back_all_but_first(self) -> int:
        """Hand back the lines of a bad record after its first; the number of its first line."""
        first, *rest = self.taken
        self.pending.extendleft(reversed(rest))
        return first[0]


def records(path: Path, unreadable: str) -> tuple[list[str], Iterator[dict]]:
    """(the header, an iterator of {column: text or None} records, a bad one as {unreadable: why})."""
    handle = open(path, "rb")
    lines = _Lines(handle)
    reader = csv.reader(lines, strict=True)
    try:
        header = next(reader, [])
    except csv.Error as exc:
        handle.close()
        raise OptionError(f"the header of {path.name} is not valid CSV ({exc})") from None
    if header and header[0].startswith("\ufeff"):  # a byte-order mark, as spreadsheets write it
        header[0] = header[0][1:]
    if any(_not_text(name) for name in header):
        handle.close()
        raise OptionError(f"the header of {path.name} is not UTF-8 text: save the file as UTF-8")

    def read() -> Iterator[dict]:
        nonlocal reader
        with handle:
            while True:
                lines.taken = []
                try:
                    values = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    line = lines.give_back_all_but_first()
                    reader = csv.reader(lines, strict=True)
                    yield {unreadable: f"line {line} is not valid CSV ({exc}: is a quote left open?)"}
                    continue
                if not values:
                    continue  # a blank line
                line = lines.taken[0][0]
                if len(values) != len(header):
                    yield {unreadable: f"line {line} has {len(values)} values for {len(header)} columns"}
                    continue
                yield {name: value or None for name, value in zip(header, values)}

    return header, read()


def check_text(record: dict, needed, unreadable: str) -> dict:
    """`record`, or a bad one when a needed value holds bytes that are not UTF-8."""
    for name in needed:
        value = record.get(name)
        if isinstance(value, str) and _not_text(value):
            byte = next(ord(char) - 0xDC00 for char in value if "\udc80" <= char <= "\udcff")
            return {unreadable: f"column {name!r} is not UTF-8 text (byte 0x{byte:02x}): save the file as UTF-8"}
    return record


def infer_types(columns: dict[str, list], text_columns) -> dict[str, pa.DataType]:
    """The Arrow type of each column: text for `text_columns`, else what all non-missing values share."""
    types = {}
    for name, values in columns.items():
        present = [value for value in values if value is not None]
        if name in text_columns or not present:
            types[name] = pa.string()
        elif all(_INTEGER.fullmatch(value) for value in present):
            types[name] = pa.int64()
        elif all(_FLOAT.fullmatch(value) for value in present):
            types[name] = pa.float64()
        elif all(value in _BOOLEANS for value in present):
            types[name] = pa.bool_()
        else:
            types[name] = pa.string()
    return types


def convert(columns: dict[str, list], types: dict[str, pa.DataType], first_row: int, source: str) -> dict[str, list]:
    """The chunk's values in their columns' types; an OptionError for a value that does not fit."""
    converted = {}
    for name, values in columns.items():
        kind = types.get(name, pa.string())
        if kind == pa.string():
            converted[name] = values
            continue
        to_value = _CONVERT[kind]
        try:
            converted[name] = [None if value is None else to_value(value) for value in values]
        except (ValueError, KeyError):
            row = first_row + next(i for i, value in enumerate(values) if value is not None and not _fits(value, to_value)) + 1
            raise OptionError(f"{source}: column {name!r} holds {kind} values in its first rows but "
                              f"{values[row - first_row - 1]!r} at row {row}: keep it out of the output, or "
                              "quote the column's values the same way throughout") from None
    return converted


def _fits(value: str, to_value) -> bool:
    try:
        to_value(value)
    except (ValueError, KeyError):
        return False
    return True


def _not_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
