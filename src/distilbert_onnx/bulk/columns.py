"""Table columns to pipeline inputs, and pipeline results back to columns.

Which fields a task reads (text / text_pair, question / context, prompt / choices) comes from its
TaskSpec, so nothing here knows a task by name. A row becomes a record {field: value} and the spec's
`input_from_record` turns it into the pipeline input. A result that is a dict spreads into one column
per key (label, score; score, start, end, answer); any other result (a list of entities, of labels,
of choices, a vector) goes whole into one column, `result` unless named otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import OptionError
from ..runtime.pipelines.base import plain
from ..tasks import TASKS, TaskSpec

# Every field a task reads from a record, in table order; each gets a --FIELD-column option.
RECORD_FIELDS: tuple[str, ...] = tuple(dict.fromkeys(name for spec in TASKS for name in spec.record_fields))
DEFAULT_RESULT_COLUMN = "result"


@dataclass(frozen=True)
class Problem:
    """Why one row cannot be scored: the column at fault (None when the model's checks refused it)."""

    message: str
    column: str | None = None

    def describe(self, row: int) -> str:
        where = f"row {row}" + (f", column {self.column!r}" if self.column else "")
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class ColumnMap:
    """Which input column feeds each field of the task, and what else the output carries."""

    spec: TaskSpec
    fields: dict[str, str]  # record field -> input column
    id_column: str | None = None
    keep: tuple[str, ...] = ()
    result_column: str = DEFAULT_RESULT_COLUMN
    optional: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def for_task(cls, spec: TaskSpec, columns: dict[str, str | None], id_column: str | None = None,
                 keep: tuple[str, ...] = (), result_column: str = DEFAULT_RESULT_COLUMN) -> ColumnMap:
        """Required fields read the column named like them unless told otherwise; optional fields
        (a text pair) only the column given. A column for a field the task does not read is an error."""
        extra = sorted(name for name, column in columns.items() if column and name not in spec.record_fields)
        if extra:
            options = ", ".join(f"--{name.replace('_', '-')}-column" for name in extra)
            raise OptionError(f"{options}: {spec.name} reads {', '.join(spec.record_fields)} only")
        fields = {name: columns.get(name) or name for name in spec.required_fields}
        fields.update({name: columns[name] for name in spec.record_fields if name not in fields and columns.get(name)})
        optional = frozenset(set(fields) - set(spec.required_fields))
        return cls(spec, fields, id_column, tuple(keep), result_column, optional)

    @property
    def carried(self) -> tuple[str, ...]:
        """Input columns copied to the output, first the id, then the kept ones."""
        return tuple(dict.fromkeys(([self.id_column] if self.id_column else []) + list(self.keep)))

    @property
    def needed(self) -> tuple[str, ...]:
        """Every input column the job reads."""
        return tuple(dict.fromkeys([*self.fields.values(), *self.carried]))

    def check_present(self, available: list[str], source: str) -> None:
        """An OptionError naming the first needed column the input lacks."""
        missing = [column for column in self.needed if column not in available]
        if missing:
            hint = ", ".join(available[:20]) + (", ..." if len(available) > 20 else "")
            raise OptionError(f"{source} has no column {missing[0]!r} (its columns: {hint}); "
                              f"choose the columns with --text-column, --id-column, --keep-columns and the like")

    def inputs(self, columns: dict[str, list]) -> list:
        """The pipeline input of each row, or its Problem."""
        count = len(next(iter(columns.values()))) if columns else 0
        return [self.input_of({name: columns[column][i] for name, column in self.fields.items()}) for i in range(count)]

    def input_of(self, values: dict):
        """One row's pipeline input from its field values, or the Problem with them."""
        record = {}
        for name, value in values.items():
            if _missing(value):
                if name in self.optional:
                    continue
                return Problem("missing value", self.fields[name])
            if not _text_or_texts(value):
                return Problem(f"a {type(value).__name__} value, expected text", self.fields[name])
            record[name] = value
        try:
            return self.spec.input_from_record(record, "the row")
        except ValueError as exc:
            return Problem(str(exc))

    def result_columns(self, result) -> dict:
        """A result as {column: value}: a dict's keys, or the whole result in the result column."""
        if isinstance(result, dict):
            columns = {key: plain(value) for key, value in result.items()}
        else:
            columns = {self.result_column: plain(result)}
        clash = set(columns) & set(self.carried)
        if clash:
            raise OptionError(f"the output would have two columns named {sorted(clash)[0]!r}, a kept input column and "
                              "a result: keep other columns (or, for a result in one column, set --result-column)")
        return columns


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _text_or_texts(value) -> bool:
    if isinstance(value, str):
        return True
    return isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value)
