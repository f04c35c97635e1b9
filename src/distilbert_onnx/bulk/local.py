"""The local engine: an input table through a loaded pipeline into numbered parts, chunk by chunk,
so memory stays flat whatever the table's size.

`predict_file` reads a chunk (1,024 rows), checks each row's values, scores the good rows as one
list (the pipeline batches them by length), and appends the kept columns and the results to the
current part. `write_parts` is the half shared with the Ray engine: scored chunks in input order to
parts, bad rows to the errors or to a RowError.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ArtifactError, OptionError, first_line, os_error_line
from ..tables import readers
from . import formats, parts
from .bad_rows import FAIL, SKIP, check_on_error, chunk_inputs, stop_if_failing
from .columns import ColumnMap, Problem
from .fingerprint import input_fingerprint
from .scoring import score

DEFAULT_PART_ROWS = 10_000


@dataclass
class Summary:
    """What a job did: rows read (this run), rows written, rows set aside, rows done before a resume."""

    rows: int = 0
    written: int = 0
    skipped: int = 0
    resumed_rows: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)  # the first few bad rows, described


@dataclass(frozen=True)
class Job:
    """What to read, where to write, and how to treat bad rows: the settings both engines share."""

    input: Path
    output: parts.Output
    columns: ColumnMap
    on_error: str = FAIL
    errors_file: Path | None = None


def plan_job(input_path, output_path, columns: ColumnMap, *, options: dict, model: dict, on_error: str = FAIL,
             errors_file=None, folder_format: str | None = None, part_rows: int = DEFAULT_PART_ROWS) -> Job:
    """A Job, checked: the input's format and columns, the output's name, --on-error and --errors."""
    input_path = Path(input_path)
    if not input_path.is_file():
        raise OptionError(f"no input file at {input_path}")
    check_on_error(on_error, errors_file)
    table = readers.open_table(input_path, columns.needed, tuple(columns.fields.values()))
    columns.check_present(table.columns, input_path.name)
    settings = {
        "input": input_fingerprint(input_path), "model": model, "fields": columns.fields, "carried": list(columns.carried),
        "result_column": columns.result_column, "options": options, "on_error": on_error, "part_rows": part_rows,
    }
    output = parts.plan_output(output_path, folder_format, settings, part_rows, protected=(input_path,))
    if on_error == SKIP and errors_file is None:
        errors_file = output.target.with_name(output.target.name + ".errors.jsonl")
    if errors_file is not None and Path(errors_file).absolute() in (input_path.absolute(), output.target):
        raise OptionError(f"--errors {errors_file} is the input or the output: choose another file")
    return Job(input_path, output, columns, on_error, Path(errors_file).absolute() if errors_file else None)


def predict_file(pipe, job: Job, *, options: dict | None = None, batch_size: int = 32, resume: bool = False,
                 force: bool = False, progress: Callable[[int, int | None], None] | None = None) -> Summary:
    """Score `job.input` with `pipe` into `job.output`; returns the Summary."""
    options = options or {}
    pipe([], batch_size=batch_size, **options)  # refuse bad options before any file is made
    done_parts = parts.start(job.output, resume, force)
    start_row = done_parts * job.output.part_rows
    table = readers.open_table(job.input, job.columns.needed, tuple(job.columns.fields.values()), skip=start_row)

    def scored():
        for chunk in readable(table.chunks, job.input, start_row):
            inputs = chunk_inputs(job.columns, chunk)
            yield chunk, score(pipe, inputs, batch_size, options)

    return write_parts(job, scored(), done_parts, table.types, total=table.rows, progress=progress)


def readable(chunks: Iterable[dict], path: Path, first_row: int) -> Iterator[dict]:
    """The chunks, with a read that fails (a damaged page, an I/O error) as one ArtifactError naming
    the file and the last row read."""
    row = first_row
    try:
        for chunk in chunks:
            row += readers.row_count(chunk)
            yield chunk
    except (OSError, readers.ArrowError) as exc:
        raise ArtifactError(f"cannot read {path.name} after row {row:,} ({first_line(exc)}): the file is damaged "
                            "or was changed while the job ran") from None


def write_parts(job: Job, scored: Iterable[tuple[dict, list]], done_parts: int, types: dict,
                total: int | None = None, progress=None) -> Summary:
    """Scored chunks, in input order from part `done_parts` on, into the job's parts; then the target."""
    output, columns = job.output, job.columns
    summary = Summary(resumed_rows=done_parts * output.part_rows)
    types = {**{name: types[name] for name in columns.carried if name in types},
             **formats.written_types(output.complete_parts(), output.kind)}
    started = time.perf_counter()
    row = summary.resumed_rows
    if progress:
        progress(row, total)
    writer = None
    try:
        for index, pieces in _by_part(scored, output.part_rows, done_parts):
            writer = formats.WRITERS[output.kind](output.part(index).with_suffix(output.extension + ".tmp"), types)
            bad = []
            for chunk, outcomes in pieces:
                rows, failures = _output_rows(columns, chunk, outcomes, row)
                row += len(outcomes)
                for failure in failures:
                    stop_if_failing(job.on_error, f"{job.input.name} {failure['error']}",
                                    "--on-error skip sets bad rows aside")
                    bad.append(failure)
                if rows:
                    writer.write(rows)
                summary.rows += len(outcomes)
                summary.written += readers.row_count(rows)
                if progress:
                    progress(row, total)
            writer.close()
            types = getattr(writer, "types", types)
            if job.on_error == SKIP:
                _write_errors(output.errors(index), bad)
            summary.skipped += len(bad)
            summary.errors += [failure["error"] for failure in bad][: max(0, 5 - len(summary.errors))]
            os.replace(writer.path, output.part(index))
        parts.finish(output, job.errors_file)
    except OSError as exc:  # a full disk: one line, and no parts left
        _abort(writer)
        parts.discard(output)
        raise ArtifactError(f"cannot write {output.target}: {os_error_line(exc)}") from None
    except Exception:  # a bad row with --on-error fail, an unreadable input: nothing is kept
        _abort(writer)
        parts.discard(output)
        raise
    except BaseException:  # Ctrl-C: the complete parts stay for --resume
        _abort(writer)
        parts.discard_lock(output)
        raise
    if job.errors_file is not None:
        summary.skipped = _count_errors(job.errors_file)
    summary.seconds = time.perf_counter() - started
    return summary


def _abort(writer) -> None:
    if writer is not None:
        writer.abort()


def _by_part(scored: Iterable[tuple[dict, list]], part_rows: int, first_part: int) -> Iterator[tuple[int, Iterator]]:
    """(part index, its (chunk, outcomes) pieces), cutting chunks at part boundaries."""
    stream = iter(_nonempty(scored))
    pending = next(stream, None)
    index = first_part
    while pending is not None:
        def pieces():
            nonlocal pending
            filled = 0
            while pending is not None and filled < part_rows:
                chunk, outcomes = pending
                take = min(len(outcomes), part_rows - filled)
                if take < len(outcomes):
                    yield {name: values[:take] for name, values in chunk.items()}, outcomes[:take]
                    pending = ({name: values[take:] for name, values in chunk.items()}, outcomes[take:])
                else:
                    yield chunk, outcomes
                    pending = next(stream, None)
                filled += take

        yield index, pieces()
        index += 1


def _nonempty(scored):
    for chunk, outcomes in scored:
        if outcomes:
            yield chunk, outcomes


def _output_rows(columns: ColumnMap, chunk: dict[str, list], outcomes: list, first_row: int):
    """The output columns of the scored rows, and a failure record per bad row."""
    failures = []
    for i, outcome in enumerate(outcomes):
        if isinstance(outcome, Problem):
            failure = {"row": first_row + i + 1, "column": outcome.column, "error": outcome.describe(first_row + i + 1)}
            if columns.id_column:
                failure["id"] = chunk[columns.id_column][i]
            failures.append(failure)
    good = [i for i, outcome in enumerate(outcomes) if not isinstance(outcome, Problem)]
    if not good:
        return {}, failures
    results = [columns.result_columns(outcomes[i]) for i in good]
    out = {name: [chunk[name][i] for i in good] for name in columns.carried}
    out.update({name: [result.get(name) for result in results] for name in dict.fromkeys(k for r in results for k in r)})
    return out, failures


def _write_errors(path: Path, failures: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for failure in failures:
            handle.write(json.dumps(failure, ensure_ascii=False, default=str) + "\n")


def _count_errors(path: Path) -> int:
    """Bad rows in the errors file: this run's and, after a resume, the earlier runs'."""
    with open(path, encoding="utf-8") as handle:
        return sum(1 for _ in handle)
