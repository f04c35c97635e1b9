"""`openvino DIR`: add the OpenVINO variants (fp32 IR with its bf16 figure, NNCF int8 IR) to an
exported folder."""

from __future__ import annotations

import click

from .app import main, progress, with_options
from .entries import ir_lines
from .options import DATA_OPTIONS, FOLDER, REQUIRE_INT8, TARGET_OPTIONS, settings_options


@main.command()
@FOLDER
@with_options(TARGET_OPTIONS)
@click.option("--no-int8", is_flag=True, help="Only the fp32 IR (and its bf16 figure): no NNCF int8 IR.")
@REQUIRE_INT8
@with_options(DATA_OPTIONS)
def openvino(folder, no_int8, require_int8, **options):
    """Add openvino_model.xml (fp32 IR) and openvino_model_int8.xml (NNCF static int8 meeting the
    fidelity target) to an exported FOLDER. Needs the [openvino-build] extra (openvino, nncf).

    An int8 IR that cannot meet its target is left out with a line saying why (the fp32 IR is still
    written); --require-int8 makes that an error."""
    from ..openvino_build.build import openvino_folder
    from ..checks.quantize_settings import QuantizeSettings
    from ..progress import Stages

    settings = QuantizeSettings.from_options(require_int8=require_int8, **settings_options(options))
    records = openvino_folder(folder, settings, int8=not no_int8, stages=Stages(progress))
    for name, record in records.items():
        click.echo(f"{record['file']} + {record['weights']['file']}: {record['size_bytes'] / 1e6:.1f} MB")
        for line in ir_lines(record):
            click.echo(f"  {line}")
