"""`distilbert-onnx predict DIR --input TABLE --output OUT`: the bulk options of predict, and the job.

predict.py applies BULK_OPTIONS to its command and hands over to `run` when --output is given.
"""

from __future__ import annotations

import sys
import time

import click

from ..bulk.bad_rows import FAIL, ON_ERROR
from ..bulk.columns import RECORD_FIELDS as _FIELDS
from .app import progress

BULK_OPTIONS = [
    click.option("--output", type=click.Path(), help="Bulk mode: OUT.parquet or OUT.jsonl (one file), or a folder of numbered parts; --input is then a .parquet, .csv or .jsonl table."),
    *[click.option(f"--{field.replace('_', '-')}-column", f"{field}_column", metavar="COLUMN",
                   help=f"Bulk: the input column holding {field} [default: {field}]." if field != "text_pair"
                   else "Bulk: the input column holding the second text of a pair [default: none].")
      for field in _FIELDS],
    click.option("--id-column", metavar="COLUMN", help="Bulk: an input column copied first into the output (and into --errors)."),
    click.option("--keep-columns", metavar="A,B", help="Bulk: comma-separated input columns copied into the output."),
    click.option("--result-column", default="result", show_default=True, help="Bulk: the column for results that are not a dict (entities, vectors, ranked labels)."),
    click.option("--on-error", type=click.Choice(ON_ERROR), default=FAIL, show_default=True, help="Bulk: stop at the first bad row (nothing written), or set bad rows aside in --errors."),
    click.option("--errors", "errors_file", type=click.Path(dir_okay=False), help="Bulk, with --on-error skip: JSON Lines of the bad rows [default: OUT.errors.jsonl]."),
    click.option("--resume", is_flag=True, help="Bulk: continue an interrupted job from its last complete part."),
    click.option("--force", is_flag=True, help="Bulk: replace an existing output."),
    click.option("--format", "output_format", type=click.Choice(["parquet", "jsonl"]), help="Bulk: the parts' format when --output is a folder [default: parquet]."),
    click.option("--part-rows", type=click.IntRange(min=1), default=10_000, show_default=True, help="Bulk: input rows per part (the unit --resume restarts from)."),
    click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True, help="Bulk: this process, or Ray Data actors (needs the [ray] extra)."),
    click.option("--ray-address", help="Bulk, Ray: the cluster to join (auto, ray://host:10001) [default: start a local one]."),
    click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Bulk, Ray: actors, each with one loaded model."),
    click.option("--threads-per-worker", type=click.IntRange(min=1), default=1, show_default=True, help="Bulk, Ray: CPU threads (and Ray CPUs) per actor."),
]
# Bulk options and their defaults: any other value without --output is a mistake.
_DEFAULTS = {"result_column": "result", "on_error": FAIL, "resume": False, "force": False, "part_rows": 10_000,
             "engine": "local", "workers": 1, "threads_per_worker": 1}
BULK_NAMES = ("output", *(f"{field}_column" for field in _FIELDS), "id_column", "keep_columns", "errors_file",
              "output_format", "ray_address", *_DEFAULTS)


def check_unused(options: dict) -> None:
    """Bulk options given without --output: a usage error."""
    given = [name for name in BULK_NAMES if options.get(name) not in (None, _DEFAULTS.get(name))]
    if given:
        renamed = {"errors_file": "errors", "output_format": "format"}
        flags = ", ".join("--" + renamed.get(name, name).replace("_", "-") for name in given)
        raise click.UsageError(f"{flags} go with --output (bulk mode)")


def run(folder, input_file, device, variant, backend, batch_size, threads, pipeline_options: dict, options: dict) -> None:
    """The bulk job of the predict command, with a progress line and a summary on stderr."""
    from ..bulk import predict_file

    if not input_file:
        raise click.UsageError("--output needs --input TABLE (.parquet, .csv or .jsonl)")
    columns = {field: options[f"{field}_column"] for field in _FIELDS if options[f"{field}_column"]}
    keep = [name.strip() for name in (options["keep_columns"] or "").split(",") if name.strip()]
    bar = RowProgress()
    try:
        summary = predict_file(
            folder, input_file, options["output"], columns=columns, id_column=options["id_column"], keep_columns=keep,
            result_column=options["result_column"], options=pipeline_options, on_error=options["on_error"],
            errors=options["errors_file"], resume=options["resume"], force=options["force"],
            output_format=options["output_format"], part_rows=options["part_rows"], batch_size=batch_size,
            device=device, variant=variant, backend=backend, threads=threads, engine=options["engine"],
            ray_address=options["ray_address"], workers=options["workers"],
            threads_per_worker=options["threads_per_worker"], progress=bar.update)
    except KeyboardInterrupt:
        bar.done()
        progress("interrupted: the complete parts are kept; run the same command with --resume to continue")
        raise
    except (TypeError, ValueError) as exc:
        bar.done()
        raise click.ClickException(str(exc)) from None
    bar.done()
    resumed = f" (after {summary.resumed_rows:,} rows done earlier)" if summary.resumed_rows else ""
    progress(f"{summary.rows:,} rows in {summary.seconds:.1f} s{resumed}: {summary.written:,} written to "
             f"{options['output']}, {summary.skipped:,} bad row(s) set aside")
    if summary.skipped:
        example = f", e.g. {summary.errors[0]}" if summary.errors else ""
        progress(f"bad rows are listed in {options['errors_file'] or options['output'] + '.errors.jsonl'}{example}")


class RowProgress:
    """Rows done and rows per second (this run's) on stderr, redrawn at most twice a second."""

    def __init__(self):
        self.base: int | None = None
        self.rows, self.total = 0, None
        self.started = self.shown = 0.0

    def update(self, rows: int, total: int | None) -> None:
        now = time.perf_counter()
        if self.base is None:  # the first call gives the rows done before this run
            self.base, self.started = rows, now
        self.rows, self.total = rows, total
        if now - self.shown >= 0.5:
            self.shown = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        rate = (self.rows - (self.base or 0)) / max(now - self.started, 1e-9)
        of = f"/{self.total:,}" if self.total else ""
        sys.stderr.write(f"\rpredicting: {self.rows:,}{of} rows, {rate:,.0f} rows/s")
        sys.stderr.flush()

    def done(self) -> None:
        if self.base is not None:
            self._draw(time.perf_counter())
            sys.stderr.write("\n")
