"""Arguments and options that several commands take, defined once.

Defaults and help of the build options come from distilbert_onnx.options, the variant names from the
variant table, the task names from the task table. Apply a list of them with app.with_options.
"""

from __future__ import annotations

import click

from ..bulk.columns import RECORD_FIELDS
from ..options import ATOL, CALIBRATION_ROWS, GRAPH, MAX_METRIC_DROP, OPSET
from ..checks.quantize_settings import BUILT_IN_SAMPLE
from ..targets import BOUNDS
from ..tasks import TASK_CHOICES
from ..variants import OPT_IN

FOLDER = click.argument("folder", type=click.Path(exists=True, file_okay=False))
DEVICE = click.option("--device", type=click.Choice(["cpu", "cuda", "auto"]), default="cpu", show_default=True)
THREADS = click.option("--threads", type=click.IntRange(min=1), help="CPU threads [default: all cores].")
FORCE = click.option("--force", is_flag=True, help="Replace OUTPUT if it exists and is not empty.")
# The variants made only on request (export, optimize), as the variant table names their flags.
OPT_IN_OPTIONS = [click.option(variant.opt_in.flag, variant.opt_in.keyword, is_flag=True, help=variant.opt_in.help)
                  for variant in OPT_IN]
TASK = click.option("--task", type=click.Choice(TASK_CHOICES), help="Head to export [default: from config.json architectures].")
OPSET_OPTION = click.option(OPSET.flag, type=int, default=OPSET.default, show_default=True, help=OPSET.help)
GRAPH_OPTION = click.option(GRAPH.flag, type=click.Choice(GRAPH.choices), default=GRAPH.default, show_default=True,
                            help=GRAPH.help)


def atol_option(against: str):
    """--atol, its help naming the reference the graph is validated `against`."""
    return click.option(ATOL.flag, type=float, default=ATOL.default, show_default=True,
                        help=ATOL.help.format(reference=against))


# The int8 fidelity target (its bounds, as targets.py applies them per head) and the texts it is
# measured on (export, quantize, openvino). A command takes the bounds as keyword arguments named as
# in targets.BOUNDS.
TARGET_OPTIONS = [
    click.option("--calibration-texts", type=click.Path(dir_okay=False), help=f"Text file, one text per line, to measure int8 fidelity on [default: {BUILT_IN_SAMPLE}]."),
    *(click.option(bound.option.flag, type=float,
                   help=f"{bound.option.help} [default: {'none' if bound.option.default is None else bound.option.default}].")
      for bound in BOUNDS.values()),
]
REQUIRE_INT8 = click.option("--require-int8", is_flag=True,
                            help="An int8 variant that cannot meet its target is an error [default: left out, with a line saying why].")

# The user's own data in a build (export, quantize, openvino): calibration rows, and the labelled rows
# of the metric gate, read with the task's --FIELD-column options (as `predict` and `evaluate` read them).
DATA_OPTIONS = [
    click.option("--calibration-data", type=click.Path(dir_okay=False), metavar="FILE",
                 help="Calibrate int8 on your own rows (.parquet, .csv, .jsonl; the --FIELD-column options) instead of texts."),
    click.option(CALIBRATION_ROWS.flag, type=int, help=f"{CALIBRATION_ROWS.help} [default: {CALIBRATION_ROWS.default}]."),
    click.option("--eval-data", type=click.Path(dir_okay=False), metavar="FILE",
                 help="Labelled rows (.parquet, .csv, .jsonl) for the metric gate: with --max-metric-drop, each int8 "
                      "variant keeps the task's metric within that drop of fp32's on them."),
    click.option("--label-column", metavar="COLUMN", help="--eval-data: the column of gold labels [default: label]."),
    click.option("--eval-rows", type=click.IntRange(min=1), help="--eval-data: its first N rows [default: all]."),
    click.option(MAX_METRIC_DROP.flag, type=float, metavar="POINTS", help=MAX_METRIC_DROP.help),
    *(click.option(f"--{name.replace('_', '-')}-column", f"{name}_column", metavar="COLUMN",
                   help=f"--calibration-data / --eval-data: the column holding {name} [default: {name}]."
                   if name != "text_pair" else "--calibration-data / --eval-data: the column of a text pair's second text.")
      for name in RECORD_FIELDS),
]


def settings_options(options: dict) -> dict:
    """A build command's target and data options as QuantizeSettings.from_options takes them (the
    --FIELD-column options gathered into `columns`)."""
    options = dict(options)
    columns = {name: options.pop(f"{name}_column") for name in RECORD_FIELDS}
    return {**options, "columns": columns}
