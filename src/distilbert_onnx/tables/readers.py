"""Read the user's tables, Parquet, CSV and JSON Lines, in chunks: what bulk jobs score, what
`evaluate` and the metric gate score against, and what calibration rows come from.

Readers stream: Parquet by record batches (pyarrow.parquet.ParquetFile.iter_batches), CSV record by
record (csv_reader.py: a bad record is a bad row; its text columns are read as text whatever they
look like, and an empty cell is missing), JSON Lines a line at a time (pyarrow's JSON reader reads
whole files, and one malformed line would sink it; json_lines.py). A chunk is {column: list of
values}; a row that could not be read has its reason in the UNREADABLE column and all values missing.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import OptionError
from . import UNREADABLE, csv_reader, json_lines

INPUT_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
CHUNK_ROWS = 1024
# What pyarrow raises for a file it cannot read (a damaged page, a bad encoding).
ArrowError = pa.ArrowException


def input_format(path: Path) -> str:
    kind = INPUT_FORMATS.get(path.suffix.lower())
    if kind is None:
        raise OptionError(f"cannot tell the format of {path.name}: name the input .parquet, .csv or .jsonl")
    return kind


@dataclass
class Table:
    """An input table being read: its columns, their Arrow types where the format has them, its row
    count where it is cheap to know, and its chunks."""

    columns: list[str]
    types: dict[str, pa.DataType]
    rows: int | None
    chunks: Iterator[dict[str, list]]


def open_table(path: Path, needed: tuple[str, ...], text_columns: tuple[str, ...], skip: int = 0,
               chunk_rows: int = CHUNK_ROWS) -> Table:
    """`path` opened for reading the `needed` columns from row `skip` on (0-based)."""
    kind = input_format(path)
    if kind == "parquet":
        return _parquet(path, needed, skip, chunk_rows)
    if kind == "csv":
        return _csv(path, needed, text_columns, skip, chunk_rows)
    return _jsonl(path, needed, skip, chunk_rows)


def _parquet(path: Path, needed, skip: int, chunk_rows: int) -> Table:
    file = pq.ParquetFile(path)
    schema = file.schema_arrow
    columns = list(schema.names)
    metadata = file.metadata
    first_group, before = 0, 0
    while first_group < metadata.num_row_groups and before + metadata.row_group(first_group).num_rows <= skip:
        before += metadata.row_group(first_group).num_rows
        first_group += 1

    def chunks():
        wanted = [name for name in needed if name in columns]
        groups = list(range(first_group, metadata.num_row_groups))
        if not groups:
            return
        batches = file.iter_batches(batch_size=chunk_rows, row_groups=groups, columns=wanted)
        yield from _skip_rows(({name: batch.column(name).to_pylist() for name in wanted} for batch in batches),
                              skip - before)

    types = {name: schema.field(name).type for name in columns}
    return Table(columns, types, metadata.num_rows, chunks())


def _csv(path: Path, needed, text_columns, skip: int, chunk_rows: int) -> Table:
    """CSV read record by record (csv_reader.py): a bad record is a bad row, never a failed job."""
    header, records = csv_reader.records(path, UNREADABLE)
    wanted = [name for name in needed if name in header]

    def batches():
        batch = []
        for record in records:
            batch.append(record if UNREADABLE in record else csv_reader.check_text(record, wanted, UNREADABLE))
            if len(batch) == chunk_rows:
                yield batch
                batch = []
        if batch:
            yield batch

    pending = batches()
    first = next(pending, [])
    types = csv_reader.infer_types({name: [record.get(name) for record in first] for name in wanted}, text_columns)

    def chunks():
        row = 0
        for batch in itertools.chain([first] if first else [], pending):
            columns = columns_of(batch, needed)
            yield {**columns, **csv_reader.convert({name: columns[name] for name in wanted}, types, row, path.name)}
            row += len(batch)

    return Table(header, types, None, _skip_rows(chunks(), skip))


def _jsonl(path: Path, needed, skip: int, chunk_rows: int) -> Table:
    def records():
        for number, record, unreadable in json_lines.read_lines(path):
            yield {UNREADABLE: f"line {number} is {unreadable}"} if unreadable else record

    def chunks():
        batch = []
        for record in records():
            batch.append(record)
            if len(batch) == chunk_rows:
                yield columns_of(batch, needed)
                batch = []
        if batch:
            yield columns_of(batch, needed)

    with contextlib.closing(json_lines.read_lines(path)) as lines:
        first = next(lines, (0, None, None))[1]
    # JSON Lines has no header: a record without a needed column is a bad row, not a bad file.
    columns = list(first or {})
    columns += [name for name in needed if name not in columns]
    return Table(columns, {}, None, _skip_rows(chunks(), skip))


def columns_of(records: list[dict], needed) -> dict[str, list]:
    columns = {name: [record.get(name) for record in records] for name in needed}
    columns[UNREADABLE] = [record.get(UNREADABLE) for record in records]
    return columns


def _slices(columns: dict[str, list], size: int) -> Iterator[dict[str, list]]:
    count = len(next(iter(columns.values()))) if columns else 0
    for start in range(0, count, size):
        yield {name: values[start : start + size] for name, values in columns.items()}


def _skip_rows(chunks: Iterator[dict[str, list]], skip: int) -> Iterator[dict[str, list]]:
    for chunk in chunks:
        count = len(next(iter(chunk.values()))) if chunk else 0
        if skip >= count:
            skip -= count
            continue
        yield {name: values[skip:] for name, values in chunk.items()} if skip else chunk
        skip = 0


def row_count(chunk: dict[str, list]) -> int:
    return len(next(iter(chunk.values()))) if chunk else 0
