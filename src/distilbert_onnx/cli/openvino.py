"""`openvino DIR`: add the OpenVINO variants (fp32 IR with its bf16 figure, NNCF int8 IR) to an
exported folder."""

from __future__ import annotations

import click

from .app import main, progress, with_options
from .entries import ir_lines
from .options import FOLDER, TARGET_OPTIONS


@main.command()
@FOLDER
@with_options(TARGET_OPTIONS)
@click.option("--no-int8", is_flag=True, help="Only the fp32 IR (and its bf16 figure): no NNCF int8 IR.")
def openvino(folder, calibration_texts, min_cosine, min_worst_cosine, no_int8):
    """Add openvino_model.xml (fp32 IR) and openvino_model_int8.xml (NNCF static int8 meeting the
    fidelity target) to an exported FOLDER. Needs the [openvino-build] extra (openvino, nncf)."""
    from ..openvino_build.build import openvino_folder
    from ..quantize_settings import QuantizeSettings
    from ..progress import Stages

    settings = QuantizeSettings.from_options(calibration_texts, min_cosine, min_worst_cosine)
    records = openvino_folder(folder, settings, int8=not no_int8, stages=Stages(progress))
    for name, record in records.items():
        click.echo(f"{record['file']} + {record['weights']['file']}: {record['size_bytes'] / 1e6:.1f} MB")
        for line in ir_lines(record):
            click.echo(f"  {line}")
