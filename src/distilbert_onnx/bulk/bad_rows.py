"""Bad rows, one rule for both engines and `predict_dataset`: a row that could not be read (a JSON
Lines line, a CSV record) is a bad row like one the model refuses, and `on_error` "fail" ends the job
at the first bad row (nothing written), "skip" sets bad rows aside (the file jobs into an errors file,
a Ray Dataset into an `error` column) and scores the rest."""

from __future__ import annotations

from pathlib import Path

from ..errors import DistilbertOnnxError, OptionError
from ..tables import UNREADABLE
from .columns import ColumnMap, Problem

FAIL, SKIP = "fail", "skip"
ON_ERROR = (FAIL, SKIP)


class RowError(DistilbertOnnxError, ValueError):
    """A row that cannot be scored, with on_error "fail"."""


def check_on_error(on_error: str, errors_file: str | Path | None = None) -> None:
    """Refuse an unknown `on_error`, and an errors file where no bad row is set aside."""
    if on_error not in ON_ERROR:
        raise OptionError(f"on_error must be fail or skip, got {on_error!r}")
    if errors_file and on_error != SKIP:
        raise OptionError("--errors goes with --on-error skip (with fail, the first bad row stops the job)")


def stop_if_failing(on_error: str, description: str, how_to_skip: str) -> None:
    """With on_error "fail", the bad row `description` ends the job (a RowError saying `how_to_skip`)."""
    if on_error == FAIL:
        raise RowError(f"{description} ({how_to_skip})")


def chunk_inputs(columns: ColumnMap, chunk: dict[str, list]) -> list:
    """The pipeline inputs of a chunk's rows, a row that could not be read as its Problem."""
    inputs = columns.inputs(chunk)
    reasons = chunk.get(UNREADABLE)
    if not reasons:
        return inputs
    return [Problem(reason) if reason else item for item, reason in zip(inputs, reasons)]
