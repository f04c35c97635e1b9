"""Arguments and options that several commands take, defined once.

Defaults and help of the build options come from distilbert_onnx.options, the variant names from the
variant table, the task names from the task table. Apply a list of them with app.with_options.
"""

from __future__ import annotations

import click

from ..options import ATOL, GRAPH, MIN_COSINE, MIN_WORST_COSINE, OPSET
from ..quantize_settings import BUILT_IN_SAMPLE
from ..tasks import TASK_CHOICES

FOLDER = click.argument("folder", type=click.Path(exists=True, file_okay=False))
DEVICE = click.option("--device", type=click.Choice(["cpu", "cuda", "auto"]), default="cpu", show_default=True)
THREADS = click.option("--threads", type=click.IntRange(min=1), help="CPU threads [default: all cores].")
FORCE = click.option("--force", is_flag=True, help="Replace OUTPUT if it exists and is not empty.")
FP16 = click.option("--fp16", is_flag=True, help="Also write the fp16 graph for CUDA.")
TASK = click.option("--task", type=click.Choice(TASK_CHOICES), help="Head to export [default: from config.json architectures].")
OPSET_OPTION = click.option(OPSET.flag, type=int, default=OPSET.default, show_default=True, help=OPSET.help)
GRAPH_OPTION = click.option(GRAPH.flag, type=click.Choice(GRAPH.choices), default=GRAPH.default, show_default=True,
                            help=GRAPH.help)


def atol_option(against: str):
    """--atol, its help naming the reference the graph is validated `against`."""
    return click.option(ATOL.flag, type=float, default=ATOL.default, show_default=True,
                        help=ATOL.help.format(reference=against))


# The int8 fidelity target and the texts it is measured on (export, quantize).
TARGET_OPTIONS = [
    click.option("--calibration-texts", type=click.Path(dir_okay=False), help=f"Text file, one text per line, to measure int8 fidelity on [default: {BUILT_IN_SAMPLE}]."),
    click.option(MIN_COSINE.flag, type=float, help=f"{MIN_COSINE.help} [default: {MIN_COSINE.default}]."),
    click.option(MIN_WORST_COSINE.flag, type=float, help=f"{MIN_WORST_COSINE.help} [default: {MIN_WORST_COSINE.default}]."),
]
