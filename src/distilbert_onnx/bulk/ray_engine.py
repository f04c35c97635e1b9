"""The Ray Data engine: the same job as the local engine, scored by a pool of Ray actors.

Ray Data reads the table (read_parquet, read_csv, and read_text for JSON Lines, so that a bad line is a
bad row as it is locally), and `map_batches` sends chunks to a fixed pool of actors, each holding
one loaded pipeline for its whole life and running it on `threads_per_worker` cores. The CLI's job
keeps Ray Data's order (DataContext preserve_order) and the driver takes the scored chunks in that
order, numbers the rows and writes the same parts, errors and output as the local engine.

`predict_dataset` is the piece for users with their own Ray pipelines: a Dataset in, the Dataset
with result columns out.
"""

from __future__ import annotations

import json
import logging

import pyarrow as pa
import ray
import ray.data

from ..runtime.pipelines.base import plain
from .bad_rows import FAIL, SKIP, UNREADABLE, check_on_error, chunk_inputs, stop_if_failing
from .columns import ColumnMap, Problem
from ..tables.json_lines import parse_line
from ..tables.readers import columns_of
from .scoring import score

OUTCOME = "__distilbert_onnx_outcome"
DEFAULT_CHUNK_ROWS = 512


def connect(address: str | None, cpus: int) -> None:
    """Join the cluster at `address`, or start a local one with the actors' `cpus` and one more: Ray
    Data lists input files in a task that takes a whole CPU and cannot be told otherwise, so a
    cluster whose every CPU is held by the actors never starts reading. Quiet either way."""
    if not ray.is_initialized():
        ray.init(address=address, num_cpus=None if address else cpus + 1, include_dashboard=False,
                 logging_level=logging.WARNING, log_to_driver=False)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False


class Scorer:
    """One Ray actor's pipeline: loaded once, then a chunk of rows scored per call."""

    def __init__(self, folder: str, load_options: dict, columns: ColumnMap, options: dict, batch_size: int,
                 mode: str, lines: bool = False):
        from ..runtime.pipelines import load_pipeline as load

        self.pipe = load(folder, **load_options)
        self.columns, self.options, self.batch_size = columns, options, batch_size
        self.mode, self.lines = mode, lines

    def __call__(self, table: pa.Table) -> pa.Table:
        if self.lines:  # JSON Lines read as text: parse here, one bad line is one bad row
            chunk = columns_of([_record(line) for line in table.column("text").to_pylist()], self.columns.needed)
            carried = {name: pa.array(chunk[name]) for name in self.columns.carried}
        else:
            chunk = {name: table.column(name).to_pylist() for name in self.columns.needed}
            carried = {name: table.column(name) for name in self.columns.carried}
        outcomes = score(self.pipe, chunk_inputs(self.columns, chunk), self.batch_size, self.options)
        if self.mode == "outcomes":
            return pa.table({**carried, OUTCOME: [json.dumps(_encode(outcome)) for outcome in outcomes]})
        return _with_results(table, self.columns, outcomes, self.mode)


def _record(line: str) -> dict:
    record, unreadable = parse_line(line)
    return {UNREADABLE: unreadable} if unreadable else record


def _encode(outcome):
    if isinstance(outcome, Problem):
        return {"problem": outcome.message, "column": outcome.column}
    return {"result": plain(outcome)}


def decode(text: str):
    """An outcome as the driver gets it back: the result, or its Problem."""
    outcome = json.loads(text)
    return Problem(outcome["problem"], outcome["column"]) if "problem" in outcome else outcome["result"]


def _with_results(table: pa.Table, columns: ColumnMap, outcomes: list, on_error: str) -> pa.Table:
    problems = [outcome for outcome in outcomes if isinstance(outcome, Problem)]
    if problems:
        stop_if_failing(on_error, f"{problems[0].describe(1 + outcomes.index(problems[0]))} in a batch",
                        "rows counted within the batch; on_error='skip' marks bad rows in an error column")
    results = [None if isinstance(outcome, Problem) else columns.result_columns(outcome) for outcome in outcomes]
    names = dict.fromkeys(key for result in results if result for key in result)
    for name in names:
        table = table.append_column(name, pa.array([result.get(name) if result else None for result in results]))
    if on_error == SKIP:
        errors = [outcome.message if isinstance(outcome, Problem) else None for outcome in outcomes]
        table = table.append_column("error", pa.array(errors, type=pa.string()))
    return table


def score_dataset(ds: "ray.data.Dataset", folder, columns: ColumnMap, *, options: dict, batch_size: int,
                  load_options: dict, workers: int, threads_per_worker: int, mode: str, lines: bool = False,
                  chunk_rows: int = DEFAULT_CHUNK_ROWS) -> "ray.data.Dataset":
    """`ds` through a pool of `workers` Scorer actors of `threads_per_worker` CPUs each, in blocks of
    `chunk_rows` rows (a file read as one block would otherwise keep all but one actor idle)."""
    return ds.repartition(target_num_rows_per_block=chunk_rows).map_batches(
        Scorer,
        fn_constructor_kwargs={"folder": str(folder), "load_options": {**load_options, "threads": threads_per_worker},
                               "columns": columns, "options": options, "batch_size": batch_size, "mode": mode,
                               "lines": lines},
        batch_size=chunk_rows,
        batch_format="pyarrow",
        concurrency=workers,
        num_cpus=threads_per_worker,
    )


def read_input(path, kind: str, columns: ColumnMap) -> "ray.data.Dataset":
    """The input table as a Ray Dataset; its read tasks take no CPU from the actors' share."""
    import pyarrow.csv as pa_csv

    if kind == "parquet":
        return ray.data.read_parquet(str(path), num_cpus=0).select_columns(list(columns.needed))
    if kind == "csv":
        convert = pa_csv.ConvertOptions(include_columns=list(columns.needed),
                                        column_types={name: pa.string() for name in columns.fields.values()},
                                        strings_can_be_null=True, null_values=[""], quoted_strings_can_be_null=True)
        return ray.data.read_csv(str(path), convert_options=convert, num_cpus=0)
    return ray.data.read_text(str(path), num_cpus=0)


def scored_chunks(job, *, folder, options: dict, batch_size: int, load_options: dict, workers: int,
                  threads_per_worker: int):
    """(chunk of carried columns, outcomes) in input order, scored on the cluster, for write_parts."""
    from ..tables.readers import input_format

    ray.data.DataContext.get_current().execution_options.preserve_order = True
    kind = input_format(job.input)
    ds = read_input(job.input, kind, job.columns)
    ds = score_dataset(ds, folder, job.columns, options=options, batch_size=batch_size, load_options=load_options,
                       workers=workers, threads_per_worker=threads_per_worker, mode="outcomes",
                       lines=kind == "jsonl")
    for batch in ds.iter_batches(batch_format="pyarrow", batch_size=None):
        chunk = {name: batch.column(name).to_pylist() for name in job.columns.carried}
        yield chunk, [decode(text) for text in batch.column(OUTCOME).to_pylist()]


def predict_dataset(ds: "ray.data.Dataset", folder, *, text_column: str | None = None, columns: dict | None = None,
                    options: dict | None = None, on_error: str = FAIL, batch_size: int = 32, workers: int = 1,
                    threads_per_worker: int = 1, device: str = "cpu", variant: str = "auto", backend: str = "auto",
                    result_column: str = "result", chunk_rows: int = DEFAULT_CHUNK_ROWS) -> "ray.data.Dataset":
    """`ds` with the results of FOLDER's model as columns, scored by `workers` actors.

    `columns` maps the task's fields to the dataset's columns ({"question": "q", "context": "doc"});
    `text_column` is the short form for the text field. Results become columns as in the files
    (a dict's keys, else `result_column`). on_error="fail" stops the job at the first bad row;
    "skip" keeps every row, with an `error` column (null where the row was scored). Row order is
    Ray Data's: set DataContext.get_current().execution_options.preserve_order = True to keep it.
    """
    from ..runtime.pipelines import load_pipeline as load

    check_on_error(on_error)
    fields = dict(columns or {})
    if text_column:
        fields["text"] = text_column
    load_options = {"device": device, "variant": variant, "backend": backend}
    spec = load(folder, **load_options).context.spec  # also checks the folder before any actor starts
    column_map = ColumnMap.for_task(spec, fields, result_column=result_column)
    column_map.check_present(list(ds.columns()), "the dataset")
    return score_dataset(ds, folder, column_map, options=options or {}, batch_size=batch_size,
                         load_options=load_options, workers=workers,
                         threads_per_worker=threads_per_worker, mode=on_error, chunk_rows=chunk_rows)
