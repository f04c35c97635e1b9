"""Write bulk results: Parquet or JSON Lines parts chunk by chunk, their settled column types, and
the parts joined into the output file (the readers are in tables/).

A Parquet writer fixes its schema from the first chunk whose columns all have a type (a column of
only nulls or empty lists has none yet).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

OUTPUT_FORMATS = {".parquet": "parquet", ".jsonl": "jsonl"}


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
