"""Commands that build and inspect deployable folders: export, optimize, quantize, validate, info,
demo-checkpoint."""

from __future__ import annotations

import json

import click

from ..manifest import describe_fidelity
from ..tasks import TASK_NAMES, get_task
from .app import main, progress, with_options
from .entries import fused_summary, validation_summary, variants_table
from .options import FOLDER, FORCE, FP16, GRAPH_OPTION, OPSET_OPTION, TARGET_OPTIONS, TASK, atol_option


@main.command()
@click.argument("model")
@click.argument("output", type=click.Path(file_okay=False))
@TASK
@OPSET_OPTION
@click.option("--no-optimize", is_flag=True, help="Skip the fused graph.")
@click.option("--no-quantize", is_flag=True, help="Skip the int8 graphs (onnxruntime and OpenVINO).")
@FP16
@click.option("--no-openvino", is_flag=True, help="Skip the OpenVINO IRs (made by default when the [openvino-build] extra is installed).")
@atol_option("PyTorch")
@with_options(TARGET_OPTIONS)
@click.option("--revision", help="Hub revision (branch, tag or commit) when MODEL is a Hub id.")
@FORCE
def export(model, output, task, opset, no_optimize, no_quantize, fp16, no_openvino, atol, calibration_texts, min_cosine,
           min_worst_cosine, revision, force):
    """Export checkpoint MODEL (folder or Hub id) to the deployable folder OUTPUT."""
    from .. import export as export_model

    result = export_model(model, output, task=task, optimize=not no_optimize, quantize=not no_quantize, fp16=fp16,
                          openvino=False if no_openvino else None, opset=opset, atol=atol,
                          calibration_texts=calibration_texts, min_cosine=min_cosine,
                          min_worst_cosine=min_worst_cosine, force=force, revision=revision, echo=progress)
    click.echo(f"exported {result.task} to {result.folder} in {sum(result.seconds.values()):.1f} s")
    click.echo(variants_table(result.manifest))


@main.command()
@FOLDER
@FP16
@atol_option("model.onnx")
def optimize(folder, fp16, atol):
    """Add the fused graph (model_optimized.onnx) to an exported FOLDER."""
    from .. import optimize as optimize_folder

    for record in optimize_folder(folder, fp16=fp16, atol=atol, echo=progress).values():
        click.echo(f"{record['file']}: {fused_summary(record)}; {validation_summary(record)}")


@main.command()
@FOLDER
@with_options(TARGET_OPTIONS)
@click.option("--no-target", is_flag=True, help="Quantize every MatMul, whatever the fidelity.")
@click.option("--per-tensor", is_flag=True, help="One weight scale per tensor instead of per output channel.")
@GRAPH_OPTION
def quantize(folder, calibration_texts, min_cosine, min_worst_cosine, no_target, per_tensor, graph):
    """Add the int8 graph (model_quantized.onnx) to an exported FOLDER, meeting a fidelity target."""
    from .. import quantize as quantize_folder

    record = quantize_folder(folder, echo=progress, calibration_texts=calibration_texts, min_cosine=min_cosine,
                             min_worst_cosine=min_worst_cosine, per_channel=not per_tensor, graph=graph,
                             target=not no_target)
    quantization = record["quantization"]
    click.echo(f"{record['file']}: from {quantization['source_graph']} ({quantization['why']})")
    click.echo(f"  fidelity: {describe_fidelity(record['fidelity'], full=True)}")
    click.echo(f"  kept in fp32: {len(quantization['kept_fp32'])} MatMul(s), "
               f"{quantization['kept_fp32_compute_share']:.1%} of the compute")


@main.command()
@FOLDER
@click.option("--calibration-texts", type=click.Path(exists=True, dir_okay=False), help="Texts to measure the int8 graph on [default: built-in sample].")
def validate(folder, calibration_texts):
    """Re-check every variant of FOLDER: files, checksums, outputs against fp32 (and PyTorch if it can)."""
    from .. import validate as validate_folder

    for line in validate_folder(folder, calibration_texts, echo=progress):
        click.echo(line)


@main.command()
@FOLDER
@click.option("--json", "as_json", is_flag=True, help="Print the whole manifest as JSON.")
def info(folder, as_json):
    """Show FOLDER's task, labels, variants with sizes and validation / fidelity figures."""
    from ..config import load_config
    from ..manifest import require_manifest

    manifest = require_manifest(folder)
    if as_json:
        click.echo(json.dumps(manifest.data, indent=2))
        return
    config = load_config(folder)
    data = manifest.data
    source = manifest.source
    click.echo(f"task: {manifest.task} ({data['architecture']})")
    if get_task(manifest.task).has_labels:
        click.echo(f"labels: {', '.join(config.id2label[i] for i in sorted(config.id2label))}")
    click.echo(f"model: {config.n_layers} layers, dim {config.dim}, {config.n_heads} heads, vocab {config.vocab_size}, "
               f"max length {config.max_position_embeddings}")
    click.echo(f"source: {source['checkpoint']}" + (f" @ {source['revision']}" if source.get("revision") else ""))
    click.echo(f"opset {data['opset']}, exported {data['created']} with "
               + ", ".join(f"{name} {version}" for name, version in data["tools"].items()))
    click.echo(variants_table(manifest))


@main.command("demo-checkpoint")
@click.argument("output", type=click.Path(file_okay=False))
@click.option("--task", type=click.Choice(TASK_NAMES), default="text-classification", show_default=True)
@FORCE
def demo_checkpoint(output, task, force):
    """Write a small DistilBERT checkpoint with RANDOM weights to OUTPUT, for trying the tool offline.

    Its tokenizer is a WordPiece vocabulary trained on the package's sample texts; its predictions
    mean nothing. Needs the [export] extra.
    """
    from ..artifacts import staged_folder

    try:
        from ..exporting.demo import make_checkpoint
    except ImportError as exc:
        raise click.ClickException(f"demo-checkpoint needs PyTorch ({exc.name} is missing): pip install 'distilbert-onnx[export]'") from None
    with staged_folder(output, force) as staging:
        make_checkpoint(staging, task)
    click.echo(f"wrote a random-weight {task} checkpoint to {output} (its predictions mean nothing)")
