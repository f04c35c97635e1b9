"""`distilbert-onnx package DIR OUT --for transformers.js`: an exported folder as a JavaScript
runtime loads it (transformersjs/)."""

from __future__ import annotations

import click

from ..transformersjs.package import TARGETS
from .app import main, progress
from .options import FOLDER, FORCE


@main.command()
@FOLDER
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--for", "target", type=click.Choice(TARGETS), required=True,
              help="The runtime that loads OUT: transformers.js (Node and the browser).")
@FORCE
def package(folder, out, target, force):
    """Write OUT, a folder that transformers.js loads as is, from the exported FOLDER."""
    from ..transformersjs import package as package_folder

    record = package_folder(folder, out, target=target, force=force, echo=progress)
    click.echo(f"packaged {folder} for {target} in {out}")
    click.echo(describe(record))


def describe(record: dict) -> str:
    """The package record in lines: dtype -> variant, and what was left out and why."""
    lines = [f"  dtype {dtype}: {variant}" for dtype, variant in record["dtypes"].items()]
    lines += [f"  dtype {dtype}: left out ({why})" for dtype, why in record["left_out"].items()]
    return "\n".join(lines)
