"""`validate DIR`: re-check every variant of an exported folder.

- every file the manifest lists is there and has the sha256 it had when written;
- then each variant the manifest lists, in the table's CHECK_ORDER, by the checks its row names
  (`check`, called with a context.FolderContext):
  - model.onnx against PyTorch again, when the [export] extra is installed and the source checkpoint
    is still where the manifest says, with the same weights; otherwise it must at least run the probes;
  - the fused graph against model.onnx within the manifest's tolerance;
  - the fp16 graph against model.onnx on CUDA (reported as unvalidated without a GPU; fp16.py);
  - the int8 graph's fidelity on the built-in sample against its recorded target;
  - the OpenVINO IRs (openvino.py): their .bin checksums too, the fp32 IR against model.onnx,
    its bf16 figure, the int8 IR's fidelity against its target.
Every failure is collected; one ValidationError lists them all.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..artifacts import sha256_file
from ..config import load_config
from ..errors import ValidationError, first_line
from ..manifest import Manifest, describe_fidelity, require_manifest
from ..progress import Stages
from ..runtime.session import OnnxModel
from ..tasks import get_task
from ..variants import CHECK_ORDER, FP32, OPTIMIZED, QUANTIZED, resolve
from .context import Check, FolderContext, PytorchReference, summary
from .fidelity import fidelity
from .metric_gate import gate_summary
from .probes import check, make_probes


def validate_folder(folder: str | Path, calibration_texts: str | Path | None = None, echo=None,
                    pytorch: PytorchReference | None = None) -> list[str]:
    """One line per check that passed; a ValidationError listing every failure otherwise.

    The int8 graphs are measured on `calibration_texts` (default: the built-in sample). `pytorch` makes
    the PyTorch model of the source checkpoint (exporting.checkpoint.pytorch_reference, given by the
    front end); without it model.onnx is only run on the probes.
    """
    folder = Path(folder)
    stages = Stages(echo)
    manifest = require_manifest(folder)
    spec, config = get_task(manifest.task), load_config(folder)
    passed, failed = [], []

    def attempt(label: str, run) -> None:
        try:
            passed.append(f"{label}: {run()}")
        except ValidationError as exc:
            failed.extend(f"{label}: {line}" for line in (exc.report or [str(exc)]))
        except Exception as exc:  # a file onnxruntime cannot load or run is a failed check, not a crash
            failed.append(f"{label}: {type(exc).__name__}: {first_line(exc)}")

    with stages("check files and checksums"):
        for record in manifest.data["variants"].values():
            attempt(record["file"], lambda record=record: _checksum(folder, record))
            if "weights" in record:  # an OpenVINO IR's .bin
                attempt(record["weights"]["file"], lambda record=record: _checksum(folder, record["weights"]))
    if failed:
        raise ValidationError(f"{folder}: {len(failed)} check(s) failed", report=failed)
    context = FolderContext(folder, manifest, spec, config, make_probes(spec, config.vocab_size, config.pad_token_id),
                            OnnxModel(folder / FP32.file).run, manifest.fp32_atol, calibration_texts, pytorch)
    for variant in CHECK_ORDER:
        if variant == FP32 or manifest.has(variant):
            for label, stage, run in resolve(variant.check)(context):
                with stages(stage):
                    attempt(label, run)
    if failed:
        raise ValidationError(f"{folder}: {len(failed)} check(s) failed", report=failed)
    return passed


def fp32_checks(context: FolderContext) -> list[Check]:
    return [(FP32.file, f"validate {FP32.file}", lambda: _fp32(context))]


def optimized_checks(context: FolderContext) -> list[Check]:
    def run() -> str:
        return summary(check(context.reference, OnnxModel(context.folder / OPTIMIZED.file).run, context.spec,
                             context.probes, context.atol, OPTIMIZED.file, FP32.file))

    return [(OPTIMIZED.file, f"validate {OPTIMIZED.file} against {FP32.file}", run)]


def int8_checks(context: FolderContext) -> list[Check]:
    return [(QUANTIZED.file, f"measure {QUANTIZED.file} against {FP32.file}", lambda: _int8(context))]


def _checksum(folder: Path, record: dict) -> str:
    path = folder / record["file"]
    if not path.is_file():
        raise ValidationError("missing", report=["the file is missing"])
    if sha256_file(path) != record["sha256"]:
        raise ValidationError("changed", report=["sha256 differs from the manifest: the file changed since export"])
    return "present, sha256 matches"


def _fp32(context: FolderContext) -> str:
    manifest, spec, probes = context.manifest, context.spec, context.probes
    checkpoint = _source_checkpoint(manifest) if context.pytorch else None
    if checkpoint is None:
        for probe in probes:
            outputs = context.reference(probe.feeds)
            if not all(np.isfinite(value).all() for value in outputs.values()):
                raise ValidationError("non-finite", report=[f"non-finite outputs on probe {probe.name}"])
        return "runs on every probe (PyTorch check skipped: needs the [export] extra and the source checkpoint)"
    from .pytorch import validate_against_pytorch

    model = context.pytorch(checkpoint, spec, manifest.source.get("revision"))
    return summary(validate_against_pytorch(context.folder / FP32.file, model, spec, context.config, context.atol))


def _source_checkpoint(manifest: Manifest) -> Path | None:
    """The source checkpoint folder, if it is still there with its weights unchanged."""
    source = Path(manifest.source["checkpoint"])
    weights = manifest.source["weights"]
    if not source.is_dir() or not all((source / w["file"]).is_file() for w in weights):
        return None
    if any(sha256_file(source / w["file"]) != w["sha256"] for w in weights):
        return None
    return source


def _int8(context: FolderContext) -> str:
    record = context.manifest.record(QUANTIZED)
    settings, note, batches, expected, texts = context.measurements(record.target, per_text=True)
    figures = fidelity(expected, OnnxModel(context.folder / QUANTIZED.file).run, context.spec, batches)
    line = f"{describe_fidelity(figures)} to fp32 on {texts}{note}"
    if not settings.meets(figures):
        raise ValidationError("int8 fidelity", report=[f"{line}: misses the target {settings.describe_target()}"])
    return f"{line}; target {settings.describe_target()}" + (f"; recorded {gate_summary(record.gate)}" if record.gate else "")
