"""Labelled rows read from a Parquet, CSV or JSON Lines file through tables/readers.py.

The task's fields come from the columns `predict` reads them from (the same --FIELD-column
mapping: required fields default to a column of their own name), the gold label from
`label_column`. Every problem is a DataError of one line naming the file, and the row (counted from
1, in table order) and column where there is one. Labels are read as they are here; whether the
model has them is checked against its labels and tokenizer in scoring.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

from ..artifacts import sha256_file
from ..errors import DataError, MissingExtraError, OptionError
from ..tasks import TaskSpec

# Fields a metric family reads beside the task's own record fields: sentence pairs for similarity.
EXTRA_FIELDS = {"similarity": ("text_pair",)}
# Fields that hold a list of texts, per metric family (any other field holds one text).
LIST_FIELDS = {"choice": ("choices",), "entities": ("text",)}
# The metric families whose rows need no label (scored against a reference instead), unless pairs.
LABELS_OPTIONAL = ("similarity",)
DEFAULT_LABEL_COLUMN = "label"


@dataclass(frozen=True)
class LabelledRows:
    """The rows of a labelled file, as records of the task's fields and raw gold labels."""

    spec: TaskSpec
    path: Path
    fields: dict[str, str]  # field -> column
    label_column: str | None
    records: list[dict]
    labels: list  # the raw label of each row (None without a label column)
    sha256: str

    @property
    def rows(self) -> int:
        return len(self.records)

    def head(self, count: int) -> LabelledRows:
        """The first `count` rows."""
        return replace(self, records=self.records[:count], labels=self.labels[:count])

    def where(self, index: int, column: str | None = None) -> str:
        """"FILE row N, column 'C'" for the row at `index` (0-based)."""
        return f"{self.path.name} row {index + 1}" + (f", column {column!r}" if column else "")


def field_columns(spec: TaskSpec, columns: dict[str, str | None] | None) -> dict[str, str]:
    """{field: column}: required fields read the column named like them unless told otherwise,
    optional ones only the column given."""
    columns = {name: column for name, column in (columns or {}).items() if column}
    readable = (*spec.record_fields, *EXTRA_FIELDS.get(spec.metric, ()))
    extra = sorted(set(columns) - set(readable))
    if extra:
        options = ", ".join(f"--{name.replace('_', '-')}-column" for name in extra)
        raise OptionError(f"{options}: evaluating {spec.name} reads {', '.join(readable)} only")
    fields = {name: columns.get(name, name) for name in spec.required_fields}
    fields.update({name: column for name, column in columns.items() if name not in fields})
    return fields


def load_labelled(path, spec: TaskSpec, columns: dict[str, str | None] | None = None,
                  label_column: str | None = DEFAULT_LABEL_COLUMN, limit: int | None = None,
                  label_required: bool = True, labels: bool = True) -> LabelledRows:
    """The first `limit` rows (all without it) of the table at `path` with their gold labels.
    `label_column=None` reads no labels (sentence vectors: agreement with a reference only); so does
    a label column the file lacks when `label_required` is False and labels are optional (sentence
    vectors that are not pairs). `labels=False` reads the task's fields only, for any head (calibration)."""
    try:
        from ..tables import UNREADABLE, readers
    except ImportError as exc:
        raise MissingExtraError(f"reading tables needs {exc.name}: pip install 'distilbert-onnx[files]'") from None
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no data file at {path}")
    fields = field_columns(spec, columns)
    optional = spec.metric in LABELS_OPTIONAL and "text_pair" not in fields
    label_column = label_column if labels else None
    if label_column is None and not optional and labels:
        raise OptionError(f"evaluating {spec.name} needs gold labels: name their column with --label-column")
    if label_column and optional and not label_required:
        if label_column not in readers.open_table(path, tuple(fields.values()), ()).columns:
            label_column = None
    needed = tuple(dict.fromkeys([*fields.values(), *([label_column] if label_column else [])]))
    table = readers.open_table(path, needed, text_columns=tuple(fields.values()))
    missing = [column for column in needed if column not in table.columns]
    if missing:
        hint = ", ".join(table.columns[:20]) + (", ..." if len(table.columns) > 20 else "")
        option = "--label-column" if missing[0] == label_column else "--text-column, --question-column and the like"
        raise DataError(f"{path.name} has no column {missing[0]!r} (its columns: {hint}): name it with {option}")
    lists = LIST_FIELDS.get(spec.metric, ())
    records, labels = [], []
    for chunk in table.chunks:
        for position in range(readers.row_count(chunk)):
            if limit is not None and len(records) >= limit:
                break
            where = f"{path.name} row {len(records) + 1}"
            unreadable = chunk.get(UNREADABLE, [None] * (position + 1))[position]
            if unreadable:
                raise DataError(f"{where}: {unreadable}")
            records.append({name: _field_value(chunk[column][position], name in lists, f"{where}, column {column!r}")
                            for name, column in fields.items()})
            labels.append(_label_value(chunk, label_column, position, where, first=not labels))
        if limit is not None and len(records) >= limit:
            break
    if not records:
        raise DataError(f"{path.name} has no rows: nothing to evaluate")
    return LabelledRows(spec, path, fields, label_column, records, labels, sha256_file(path))


def _field_value(value, may_be_list: bool, where: str):
    if _missing(value):
        raise DataError(f"{where}: missing value")
    if isinstance(value, str):
        return value
    if may_be_list and isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return list(value)
    expected = "text or a list of texts" if may_be_list else "text"
    raise DataError(f"{where}: a {type(value).__name__} value, expected {expected}")


def _label_value(chunk: dict, label_column: str | None, position: int, where: str, first: bool):
    if label_column is None:
        return None
    value = chunk[label_column][position]
    if _missing(value):
        hint = ": name the labels' column with --label-column" if first else ""
        raise DataError(f"{where}, column {label_column!r}: missing label{hint}")
    return value


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
