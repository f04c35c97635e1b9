"""`distilbert-onnx benchmark`: latency and throughput of a folder's variants side by side."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..variants import VARIANTS
from .app import main, progress
from .options import DEVICE, FOLDER, THREADS


@main.command()
@FOLDER
@click.option("--batch-size", "batch_sizes", type=click.IntRange(min=1), multiple=True, help="Repeat for several [default: 1].")
@click.option("--sequence-length", "sequence_lengths", type=click.IntRange(min=1), multiple=True, help="Repeat for several [default: 128].")
@click.option("--variant", "variants", type=click.Choice(list(VARIANTS)), multiple=True, help="Repeat for several [default: every variant the device can run; the OpenVINO ones where openvino is installed].")
@DEVICE
@THREADS
@click.option("--compare-torch", type=click.Path(), help="Checkpoint (folder or Hub id) to add PyTorch eager rows for (needs the [export] extra).")
@click.option("--warmup", type=click.IntRange(min=0), default=5, show_default=True, help="Untimed runs before each measurement.")
@click.option("--runs", type=click.IntRange(min=1), default=20, show_default=True, help="At least this many timed runs per row.")
@click.option("--seconds", type=click.FloatRange(min=0), default=2.0, show_default=True, help="And at least this long per row.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the rows and the machine as JSON.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), help="Write a PNG of latency against sequence length (needs matplotlib).")
def benchmark(folder, batch_sizes, sequence_lengths, variants, device, threads, compare_torch, warmup, runs, seconds,
              json_path, plot_path):
    """Measure latency and throughput of FOLDER's variants side by side on synthetic inputs."""
    from ..artifacts import staged_file
    from ..benchmark import benchmark_folder, format_table, plot

    result = benchmark_folder(folder, variants=list(variants) or None, batch_sizes=batch_sizes or (1,),
                              sequence_lengths=sequence_lengths or (128,), device=device, threads=threads,
                              compare_torch=compare_torch, warmup=warmup, min_runs=runs, min_seconds=seconds,
                              echo=progress)
    click.echo(format_table(result))
    if json_path:
        with staged_file(Path(json_path).absolute()) as tmp:
            tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        progress(f"wrote {json_path}")
    if plot_path:
        plot(result, plot_path)
        progress(f"wrote {plot_path}")
