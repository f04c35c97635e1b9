"""The user's own data as build inputs: a table (Parquet, CSV, JSON Lines) read through the bulk
readers with the task's column options (checks/labelled.py), for calibration (--calibration-data)
and for the metric gate (--eval-data, metric_gate.py).

Calibration takes `rows` of the file's rows, sampled reproducibly (numpy's default_rng, seed 0, in
file order) when it has more, as the task's records: what the int8 builds measure fidelity on
(onnxruntime int8) and calibrate activation ranges on (NNCF static int8). Its own texts matter where
they differ from the built-in sample: long inputs (the sample's sentences average 14 tokens) and
static int8, whose activation ranges come from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..tasks import TaskSpec

SAMPLE_SEED = 0


@dataclass(frozen=True)
class DataFile:
    """A table of the user's and how to read it: columns per task field, the label column, a row limit."""

    path: Path
    columns: tuple[tuple[str, str], ...] = ()  # (field, column) as the --FIELD-column options give them
    label_column: str | None = None  # None: the default column, "label" (optional for sentence vectors)
    rows: int | None = None

    @classmethod
    def of(cls, path, columns: dict[str, str | None] | None = None, label_column: str | None = None,
           rows: int | None = None) -> DataFile:
        given = tuple((name, column) for name, column in (columns or {}).items() if column)
        return cls(Path(path), given, label_column, rows)

    def records(self, spec: TaskSpec) -> tuple[list[dict], dict]:
        """(the task's records from the file, sampled down to `rows`; where they came from, for the manifest)."""
        import numpy as np

        from .labelled import load_labelled

        labelled = load_labelled(self.path, spec, dict(self.columns), labels=False)
        records = [{name: _text(spec, name, value) for name, value in record.items()} for record in labelled.records]
        if self.rows is not None and len(records) > self.rows:
            chosen = np.sort(np.random.default_rng(SAMPLE_SEED).choice(len(records), self.rows, replace=False))
            records = [records[index] for index in chosen]
        source = {"file": self.path.name, "sha256": labelled.sha256, "rows_in_file": labelled.rows,
                  "rows_used": len(records), "sampled": f"seed {SAMPLE_SEED}" if len(records) < labelled.rows else None}
        return records, source


def _text(spec: TaskSpec, field: str, value):
    """A field's value as the model reads it: a text given as its words (token classification data,
    one word per list item) joined by spaces; a multiple-choice head's choices stay a list."""
    if isinstance(value, list) and not (spec.has_choices and field != spec.text_field):
        return " ".join(value)
    return value
