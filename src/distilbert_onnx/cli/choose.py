"""`distilbert-onnx choose`: measure which variant `load(variant="auto")` runs on this machine and
record it in the folder's manifest, so that the first load on machines of this kind decides at once."""

from __future__ import annotations

import click

from .app import main, progress


@main.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads the pipelines will use [default: all cores].")
def choose(folder, threads):
    """Time FOLDER's candidate CPU variants here and record the fastest for this machine in its manifest."""
    from pathlib import Path

    from ..errors import ArtifactError
    from ..runtime.choice import record_choice_in_manifest

    latest = record_choice_in_manifest(Path(folder), threads)
    if latest is None:
        raise ArtifactError(f"{folder} has nothing to choose between on this machine (fewer than two candidate "
                            "variants meet its fidelity target, or openvino is not installed): auto needs no record")
    timings = ", ".join(f"{name} {ms:.1f} ms" for name, ms in sorted(latest["latency_ms"].items(), key=lambda item: item[1]))
    progress(f"recorded for {latest['machine']['cpu']} ({latest['machine']['threads']} threads): {timings}")
    click.echo(latest["variant"])
