"""The export job end to end: a checkpoint in, a validated deployable folder out.

load checkpoint -> trace to ONNX -> validate against PyTorch -> tokenizer, config, manifest ->
(fuse -> quantize -> OpenVINO IRs). An int8 variant that cannot meet its target is left out, with a
line saying why, unless the settings require int8. Everything is built in a staging folder beside
the target and renamed into place only when every stage passed, so a failure leaves no
half-written output.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..artifacts import CONFIG_NAME, check_target, staged_folder
from ..checks.pytorch import pytorch_runner, validate_against_pytorch
from ..config import DistilBertConfig
from ..errors import OptionError
from ..manifest import FORMAT_VERSION, Manifest, require_manifest, variant_record, write_manifest
from ..onnx_build.optimize import optimize_folder
from ..onnx_build.quantize import quantize_folder
from ..onnx_build.write_int8 import Int8Child
from ..openvino_build.build import export_openvino
from ..options import ATOL, OPSET
from ..progress import Stages
from ..checks.quantize_settings import QuantizeSettings, int8_or_left_out
from ..runtime.choice import record_choice_in_manifest
from ..tasks import TaskSpec
from ..variants import FP32, QUANTIZED, Variant
from ..versions import tool_versions
from .checkpoint import Checkpoint, load_checkpoint
from .exporter import export_onnx
from .tokenizer_files import write_tokenizer_files


@dataclass
class ExportResult:
    """What `export` made: the folder, its task, its variants, and how long each stage took."""

    folder: Path
    task: str
    variants: list[str]
    manifest: Manifest
    seconds: dict[str, float]


def export_checkpoint(
    model: str | Path,
    output: str | Path,
    *,
    task: str | None,
    opset: int | None,
    optimize: bool,
    quantize: bool,
    also: tuple[Variant, ...],
    openvino: bool | None,
    atol: float | None,
    quantize_settings: QuantizeSettings,
    force: bool,
    revision: str | None,
    echo=None,
) -> ExportResult:
    """Export `model` (a folder or Hub id) to the deployable folder `output`, as `distilbert_onnx.export`
    (whose signature holds the defaults) asks. `also`: the opt-in variants asked for (variants.OPT_IN),
    made by the optimize step. `opset` and `atol` are checked before any work, and
    None takes their default, as options.py defines them. `openvino`: None adds the OpenVINO variants
    when the [openvino] extra is installed (and says when it is not), True requires them, False skips
    them."""
    if also and not optimize:
        raise OptionError(f"the {also[0].name} graph is made from the fused one: {also[0].opt_in.flag} cannot go with --no-optimize")
    opset, atol = OPSET.value(opset), ATOL.value(atol)
    stages = Stages(echo)
    protected = [model] if Path(model).exists() else []  # --force never replaces the checkpoint itself
    check_target(output, force, protected)
    with stages("load checkpoint"):
        checkpoint = load_checkpoint(model, task, revision)
    spec, config = checkpoint.task, checkpoint.config
    reference = pytorch_runner(checkpoint.model, spec)
    with staged_folder(output, force, protected) as staging:
        onnx_path = staging / FP32.file
        with stages(f"export {spec.name} head to ONNX (opset {opset})"):
            export_onnx(checkpoint.model, spec, config, onnx_path, opset)
        started = {}
        if quantize and quantize_settings.graph in ("auto", "unfused"):
            # The unfused int8 graph needs nothing but model.onnx: a child process writes it while this
            # one validates and fuses (it is dropped if anything fails).
            started["unfused"] = Int8Child(onnx_path, staging / ".model_int8.partial", quantize_settings.per_channel)
        try:
            with stages("validate model.onnx against PyTorch"):
                validation = validate_against_pytorch(onnx_path, reference, spec, config, atol)
            with stages("write tokenizer, config and manifest"):
                tokenizer = write_tokenizer_files(checkpoint.folder, staging, config)
                _write_config(checkpoint.folder, staging, spec)
                write_manifest(staging, _new_manifest(checkpoint, staging, opset, revision, validation, tokenizer))
            if optimize:
                optimize_folder(staging, also, atol=atol, reference=reference, against="PyTorch", stages=stages)
            if quantize:
                int8_or_left_out(lambda: quantize_folder(staging, quantize_settings, stages=stages, started=started),
                                 QUANTIZED.name, quantize_settings, staging, echo)
            if export_openvino(staging, openvino, quantize, quantize_settings, reference, stages):
                with stages("time the CPU variants here for variant='auto' (recorded for this kind of machine)"):
                    record_choice_in_manifest(staging)
        finally:
            for child in started.values():
                child.cancel()
        manifest = require_manifest(staging)
    return ExportResult(
        folder=Path(output),
        task=spec.name,
        variants=list(manifest.data["variants"]),
        manifest=manifest,
        seconds=stages.seconds,
    )


def _new_manifest(
    checkpoint: Checkpoint, folder: Path, opset: int, revision: str | None, validation: dict, tokenizer: dict
) -> dict:
    """The manifest of a folder that holds model.onnx and nothing else yet."""
    spec, config = checkpoint.task, checkpoint.config
    return {
        "format_version": FORMAT_VERSION,
        "task": spec.name,
        "architecture": spec.architecture,
        **_io_signature(spec, config),
        "opset": opset,
        "source": {
            "checkpoint": checkpoint.source,
            "revision": revision,
            "weights": [{"file": name, "sha256": digest} for name, digest in checkpoint.weight_files.items()],
        },
        "tokenizer": tokenizer,
        "variants": {FP32.name: variant_record(folder, FP32, validation=validation)},
        "tools": tool_versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _io_signature(spec: TaskSpec, config: DistilBertConfig) -> dict:
    """Inputs and outputs with their axes: names for dynamic axes, sizes for fixed ones."""
    sizes = {"dim": config.dim, "vocab": config.vocab_size, "num_labels": config.num_labels}
    return {
        "inputs": {name: {"dtype": "int64", "axes": list(axes)} for name, axes in spec.inputs.items()},
        "outputs": {
            name: {"dtype": "float32", "axes": [sizes.get(axis, axis) for axis in axes]}
            for name, axes in spec.outputs.items()
        },
    }


def _write_config(source: Path, target: Path, spec: TaskSpec) -> None:
    """config.json as the checkpoint has it, with `architectures` naming the head that was exported."""
    data = json.loads((source / CONFIG_NAME).read_text(encoding="utf-8"))
    data["architectures"] = [spec.architecture]
    (target / CONFIG_NAME).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
