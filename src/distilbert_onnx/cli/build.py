"""Commands that build and inspect deployable folders: export, optimize, quantize, validate, info,
demo-checkpoint."""

from __future__ import annotations

import json

import click

from ..checks.metric_gate import gate_summary
from ..manifest import describe_fidelity
from ..tasks import TASK_NAMES, get_task
from .app import main, progress, with_options
from .entries import fused_summary, validation_summary, variants_table
from .options import (
    DATA_OPTIONS,
    FOLDER,
    FORCE,
    GRAPH_OPTION,
    OPSET_OPTION,
    OPT_IN_OPTIONS,
    REQUIRE_INT8,
    TARGET_OPTIONS,
    TASK,
    atol_option,
    settings_options,
)


@main.command()
@click.argument("model")
@click.argument("output", type=click.Path(file_okay=False))
@TASK
@OPSET_OPTION
@click.option("--no-optimize", is_flag=True, help="Skip the fused graph.")
@click.option("--no-quantize", is_flag=True, help="Skip the int8 graphs (onnxruntime and OpenVINO).")
@with_options(OPT_IN_OPTIONS)
@click.option("--no-openvino", is_flag=True, help="Skip the OpenVINO IRs (made by default when the [openvino-build] extra is installed).")
@atol_option("PyTorch")
@with_options(TARGET_OPTIONS)
@REQUIRE_INT8
@with_options(DATA_OPTIONS)
@click.option("--revision", help="Hub revision (branch, tag or commit) when MODEL is a Hub id.")
@click.option("--transformers-js", "transformers_js", type=click.Path(file_okay=False),
              help="Also package the export for transformers.js into this folder (as `package --for transformers.js`).")
@FORCE
def export(model, output, task, opset, no_optimize, no_quantize, no_openvino, atol, require_int8, revision,
           transformers_js, force, **options):
    """Export checkpoint MODEL (folder or Hub id) to the deployable folder OUTPUT.

    An int8 variant that cannot meet its fidelity target is left out (one line says by how much it
    missed) and everything else is written; --require-int8 makes that an error."""
    from .. import export as export_model
    from ..artifacts import check_target
    from ..variants import pop_opt_in

    if transformers_js:
        check_target(transformers_js, force)

    opt_in = pop_opt_in(options)
    result = export_model(model, output, task=task, optimize=not no_optimize, quantize=not no_quantize, **opt_in,
                          openvino=False if no_openvino else None, opset=opset, atol=atol,
                          require_int8=require_int8, force=force, revision=revision, echo=progress,
                          **settings_options(options))
    click.echo(f"exported {result.task} to {result.folder} in {sum(result.seconds.values()):.1f} s")
    click.echo(variants_table(result.manifest))
    if transformers_js:
        from ..transformersjs import package
        from .package import describe

        click.echo(f"packaged for transformers.js in {transformers_js}")
        click.echo(describe(package(result.folder, transformers_js, force=force, echo=progress)))


@main.command()
@FOLDER
@with_options(OPT_IN_OPTIONS)
@atol_option("model.onnx")
def optimize(folder, atol, **opt_in):
    """Add the fused graph (model_optimized.onnx) to an exported FOLDER."""
    from .. import optimize as optimize_folder

    for record in optimize_folder(folder, atol=atol, echo=progress, **opt_in).values():
        click.echo(f"{record['file']}: {fused_summary(record)}; {validation_summary(record)}")


@main.command()
@FOLDER
@with_options(TARGET_OPTIONS)
@click.option("--no-target", is_flag=True, help="Quantize every MatMul, whatever the fidelity.")
@click.option("--per-tensor", is_flag=True, help="One weight scale per tensor instead of per output channel.")
@GRAPH_OPTION
@with_options(DATA_OPTIONS)
def quantize(folder, no_target, per_tensor, graph, **options):
    """Add the int8 graph (model_quantized.onnx) to an exported FOLDER, meeting a fidelity target
    (and, with --eval-data and --max-metric-drop, the task's metric on your data)."""
    from .. import quantize as quantize_folder

    record = quantize_folder(folder, echo=progress, per_channel=not per_tensor, graph=graph, target=not no_target,
                             **settings_options(options))
    quantization = record["quantization"]
    click.echo(f"{record['file']}: from {quantization['source_graph']} ({quantization['why']})")
    click.echo(f"  fidelity: {describe_fidelity(record['fidelity'], full=True)}")
    if record.get("gate"):
        click.echo(f"  {gate_summary(record['gate'])}")
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
    from ..ownership import mark

    try:
        from ..exporting.demo import make_checkpoint
    except ImportError as exc:
        raise click.ClickException(f"demo-checkpoint needs PyTorch ({exc.name} is missing): pip install 'distilbert-onnx[export]'") from None
    with staged_folder(output, force) as staging:
        make_checkpoint(staging, task)
        mark(staging, "demo-checkpoint")
    click.echo(f"wrote a random-weight {task} checkpoint to {output} (its predictions mean nothing)")
