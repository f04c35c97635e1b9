"""Read Parquet, CSV and JSON Lines tables in chunks, and write Parquet or JSON Lines parts.

Readers stream: Parquet by record batches (pyarrow.parquet.ParquetFile.iter_batches), CSV with
pyarrow's streaming reader (pyarrow.csv.open_csv), JSON Lines a line at a time (pyarrow's JSON reader
reads whole files, and one malformed line would sink it; json_lines.py). A chunk is {column: list of values}.
CSV is read record by record too (csv_reader.py), so a bad record is a bad row; its text columns are
read as text whatever they look like, and an empty cell is missing.
A JSON Lines line that is not an object becomes a row whose values are all missing, with the reason.

Writers take chunks as they come; a Parquet writer fixes its schema from the first chunk whose
columns all have a type (a column of only nulls or empty lists has none yet).
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import OptionError
from . import csv_reader, json_lines
from .bad_rows import UNREADABLE

INPUT_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
OUTPUT_FORMATS = {".parquet": "parquet", ".jsonl": "jsonl"}
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
            columns = _columns_of(batch, needed)
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
                yield _columns_of(batch, needed)
                batch = []
        if batch:
            yield _columns_of(batch, needed)

    with contextlib.closing(json_lines.read_lines(path)) as lines:
        first = next(lines, (0, None, None))[1]
    # JSON Lines has no header: a record without a needed column is a bad row, not a bad file.
    columns = list(first or {})
    columns += [name for name in needed if name not in columns]
    return Table(columns, {}, None, _skip_rows(chunks(), skip))


def _columns_of(records: list[dict], needed) -> dict[str, list]:
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


# --- writers ------------------------------------------------------------------------------------


class ParquetPart:
    """One Parquet file written chunk by chunk; chunks wait until every column has a type."""

    def __init__(self, path: Path, types: dict[str, pa.DataType]):
        self.path = path
        self.types = dict(types)  # column -> type, from the input or settled by earlier parts
        self.waiting: list[pa.Table] = []
        self.writer: pq.ParquetWriter | None = None
        self.sink = pa.OSFile(str(path), "wb")  # ours to close, whatever state the writer is left in

    def write(self, chunk: dict[str, list]) -> None:
        table = pa.table({name: pa.array(values, type=self.types.get(name)) for name, values in chunk.items()})
        for field in table.schema:
            if not _has_null_type(field.type):
                self.types.setdefault(field.name, field.type)
        self.waiting.append(table)
        if all(name in self.types for name in table.schema.names):
            self._flush(pa.schema([(name, self.types[name]) for name in table.schema.names]))

    def _flush(self, schema: pa.Schema) -> None:
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.sink, schema)
        for table in self.waiting:
            self.writer.write_table(table.cast(schema))
        self.waiting = []

    def close(self) -> None:
        if self.waiting:
            self._flush(self.waiting[0].schema if self.writer is None else self.writer.schema)
        if self.writer is None:  # no rows: an empty file still marks the part as done
            self.writer = pq.ParquetWriter(self.sink, pa.schema([]))
        self.writer.close()
        self.sink.close()

    def abort(self) -> None:
        """Let go of the file after a failed write (the caller removes it)."""
        if self.writer is not None:
            with contextlib.suppress(Exception):
                self.writer.close()
            self.writer.is_open = False  # its close failed on a full disk: never try again when collected
        with contextlib.suppress(Exception):
            self.sink.close()


class JsonlPart:
    """One JSON Lines file, a line per row."""

    def __init__(self, path: Path, types=None):
        self.path = path
        self.handle = open(path, "w", encoding="utf-8")

    def write(self, chunk: dict[str, list]) -> None:
        names = list(chunk)
        lines = (json.dumps(dict(zip(names, row)), ensure_ascii=False, default=str) + "\n"
                 for row in zip(*chunk.values()))
        self.handle.writelines(lines)

    def close(self) -> None:
        self.handle.close()

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self.handle.close()


WRITERS = {"parquet": ParquetPart, "jsonl": JsonlPart}


def _has_null_type(kind: pa.DataType) -> bool:
    if pa.types.is_null(kind):
        return True
    return any(_has_null_type(kind.field(i).type) for i in range(kind.num_fields))


def written_types(parts: list[Path], kind: str) -> dict[str, pa.DataType]:
    """The column types that written `parts` fixed for the parts to come: every typed column of the
    Parquet parts (a column of nulls or empty lists fixes nothing yet); JSON Lines fixes none."""
    if kind != "parquet":
        return {}
    types: dict[str, pa.DataType] = {}
    for part in parts:
        types.update({field.name: field.type for field in pq.read_schema(part) if not _has_null_type(field.type)})
    return types


def concatenate(parts: list[Path], target: Path, kind: str) -> None:
    """The parts, in order, as one file at `target` (Parquet: under one schema, row group by row group)."""
    if kind == "jsonl":
        with open(target, "wb") as out:
            for part in parts:
                with open(part, "rb") as handle:
                    while block := handle.read(1 << 20):
                        out.write(block)
        return
    schemas = [pq.read_schema(part) for part in parts]
    schema = pa.unify_schemas(schemas, promote_options="permissive") if schemas else pa.schema([])
    with pq.ParquetWriter(target, schema) as writer:
        for part in parts:
            file = pq.ParquetFile(part)
            for group in range(file.metadata.num_row_groups):
                writer.write_table(file.read_row_group(group).cast(schema))
