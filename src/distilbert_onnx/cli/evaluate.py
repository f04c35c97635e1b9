"""`distilbert-onnx evaluate DIR --data FILE`: the task's metric of every variant on labelled data,
as a table for people or JSON for machines."""

from __future__ import annotations

import json
from functools import partial

import click

from ..bulk.columns import RECORD_FIELDS
from .app import main, progress, with_options
from .options import DEVICE, FOLDER, THREADS

FIELD_COLUMNS = [
    click.option(f"--{field.replace('_', '-')}-column", f"{field}_column", metavar="COLUMN",
                 help=f"The column holding {field} [default: {field}]." if field != "text_pair"
                 else "The column holding the second text of a pair (feature-extraction: sentence pairs scored by "
                      "Spearman against --label-column's gold scores) [default: none].")
    for field in RECORD_FIELDS
]


@main.command()
@FOLDER
@click.option("--data", required=True, type=click.Path(dir_okay=False), help="The labelled table: .parquet, .csv or .jsonl.")
@with_options(FIELD_COLUMNS)
@click.option("--label-column", metavar="COLUMN", help="The column of gold labels [default: label; feature-extraction without it: no labels, agreement with fp32].")
@click.option("--limit", type=click.IntRange(min=1), help="Evaluate the first N rows only.")
@click.option("--variants", metavar="A,B", help="Comma-separated variants [default: every one the folder has that runs here]; fp32 always runs, as the reference.")
@click.option("--checkpoint", type=click.Path(), help="The PyTorch checkpoint (folder or Hub id) for a torch-fp32 row, run on the CPU (needs the [export] extra).")
@DEVICE
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@THREADS
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON instead of a table.")
def evaluate(folder, data, label_column, limit, variants, checkpoint, device, batch_size, threads, as_json, **columns):
    """Score FOLDER's variants with the task's metric on labelled --data: a 95% interval, the share of
    predictions that differ from fp32, and rows per second on this machine."""
    from ..checks.evaluation import evaluate_folder

    pytorch = None
    if checkpoint is not None:
        from ..exporting.torch_pipeline import torch_pipeline

        pytorch = partial(torch_pipeline, checkpoint)
    fields = {name.removesuffix("_column"): column for name, column in columns.items() if column}
    wanted = [name.strip() for name in (variants or "").split(",") if name.strip()] or None
    result = evaluate_folder(folder, data, columns=fields, label_column=label_column or "label",
                             label_required=label_column is not None, limit=limit, variants=wanted,
                             pytorch=pytorch, device=device, batch_size=batch_size, threads=threads,
                             progress=progress)
    click.echo(json.dumps(result.as_dict(), indent=2) if as_json else format_table(result))


def format_table(evaluation) -> str:
    """One line per variant: each figure with its interval, the change against fp32, rows/s."""
    first = evaluation.results[0].score
    names = list(first.figures)
    drops = evaluation.drops()
    cells = [[result.variant,
              *(_estimate(result.score.figures[name]) for name in names),
              _estimate(drops[result.variant]) if result.variant in drops else "-",
              "-" if result.changed is None else f"{result.changed:.2f}%",
              f"{result.rows_per_second:,.0f}"]
             for result in evaluation.results]
    header = ["variant", *names, f"{evaluation.metric} drop vs fp32", "changed vs fp32", "rows/s"]
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(len(header))]
    line = lambda row: "  ".join(cell.ljust(width) if i == 0 else cell.rjust(width)  # noqa: E731
                                 for i, (cell, width) in enumerate(zip(row, widths)))
    methods = {"wilson": "Wilson score", "bootstrap": "percentile bootstrap of rows (1,000 resamples, seed 0)"}
    intervals = "; ".join(f"{', '.join(name for name in names if first.figures[name].interval == method)}: {label}"
                          for method, label in methods.items()
                          if any(first.figures[name].interval == method for name in names))
    return "\n".join([
        f"{evaluation.task}: {evaluation.rows:,} rows of {evaluation.data.name}, metric {evaluation.metric}",
        line(header), "  ".join("-" * width for width in widths), *(line(row) for row in cells),
        f"value [95% interval] in points. Intervals: {intervals}; drop: paired bootstrap of rows against fp32.",
        *(f"not run: {name} ({reason})" for name, reason in evaluation.skipped.items()),
    ])


def _estimate(estimate) -> str:
    return f"{estimate.value:.2f} [{estimate.low:.2f}, {estimate.high:.2f}]"
