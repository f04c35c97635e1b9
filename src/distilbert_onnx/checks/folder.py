"""`validate DIR`: re-check every variant of an exported folder.

- every file the manifest lists is there and has the sha256 it had when written;
- model.onnx against PyTorch again, when the [export] extra is installed and the source checkpoint is
  still where the manifest says, with the same weights; otherwise it must at least run the probes;
- the fused graph against model.onnx within the manifest's tolerance;
- the fp16 graph against model.onnx on CUDA (reported as unvalidated without a GPU);
- the int8 graph's fidelity on the built-in sample against its recorded target;
- the OpenVINO IRs (openvino.py): their .bin checksums too, the fp32 IR against model.onnx,
  its bf16 figure, the int8 IR's fidelity against its target.
Every failure is collected; one ValidationError lists them all.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..artifacts import sha256_file
from ..config import load_config
from ..errors import ValidationError, first_line
from ..manifest import Manifest, describe_fidelity, require_manifest
from ..progress import Stages
from ..quantize_settings import recorded_settings
from ..tasks import TaskSpec, get_task
from ..variants import FP16, FP32, OPTIMIZED, QUANTIZED
from .fidelity import calibration_batches, fidelity, reference_outputs
from .fp16 import validate_fp16
from .metric_gate import gate_summary
from .openvino import openvino_checks
from ..runtime.session import OnnxModel
from .probes import Runner, check, make_probes


# (source checkpoint folder, task, revision) -> a Runner over its PyTorch model
PytorchReference = Callable[[Path, TaskSpec, "str | None"], Runner]


def validate_folder(folder: str | Path, calibration_texts: str | Path | None = None, echo=None,
                    pytorch: PytorchReference | None = None) -> list[str]:
    """One line per check that passed; a ValidationError listing every failure otherwise.

    The int8 graph is measured on `calibration_texts` (default: the built-in sample). `pytorch` makes
    the PyTorch model of the source checkpoint (exporting.checkpoint.pytorch_reference, given by the
    front end); without it model.onnx is only run on the probes.
    """
    folder = Path(folder)
    stages = Stages(echo)
    manifest = require_manifest(folder)
    spec, config = get_task(manifest.task), load_config(folder)
    probes = make_probes(spec, config.vocab_size, config.pad_token_id)
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
    reference = OnnxModel(folder / FP32.file).run
    atol = manifest.fp32_atol
    with stages("validate model.onnx"):
        attempt("model.onnx", lambda: _fp32(folder, manifest, spec, config, probes, reference, atol, pytorch))
    if manifest.has(OPTIMIZED):
        with stages("validate model_optimized.onnx against model.onnx"):
            attempt("model_optimized.onnx", lambda: _summary(check(
                reference, OnnxModel(folder / OPTIMIZED.file).run, spec, probes, atol,
                "model_optimized.onnx", "model.onnx")))
    if manifest.has(FP16):
        with stages("validate model_optimized_fp16.onnx"):
            attempt("model_optimized_fp16.onnx", lambda: _fp16(folder, spec, probes, reference))
    if manifest.has(QUANTIZED):
        with stages("measure model_quantized.onnx against model.onnx"):
            attempt("model_quantized.onnx", lambda: _int8(folder, manifest, spec, config, reference, calibration_texts))
    for label, stage, run in openvino_checks(folder, manifest, spec, config, probes, reference, atol, calibration_texts):
        with stages(stage):
            attempt(label, run)
    if failed:
        raise ValidationError(f"{folder}: {len(failed)} check(s) failed", report=failed)
    return passed


def _checksum(folder: Path, record: dict) -> str:
    path = folder / record["file"]
    if not path.is_file():
        raise ValidationError("missing", report=["the file is missing"])
    if sha256_file(path) != record["sha256"]:
        raise ValidationError("changed", report=["sha256 differs from the manifest: the file changed since export"])
    return "present, sha256 matches"


def _fp32(folder, manifest, spec, config, probes, reference, atol, pytorch: PytorchReference | None) -> str:
    checkpoint = _source_checkpoint(manifest) if pytorch else None
    if checkpoint is None:
        for probe in probes:
            outputs = reference(probe.feeds)
            if not all(np.isfinite(value).all() for value in outputs.values()):
                raise ValidationError("non-finite", report=[f"non-finite outputs on probe {probe.name}"])
        return "runs on every probe (PyTorch check skipped: needs the [export] extra and the source checkpoint)"
    from .pytorch import validate_against_pytorch

    model = pytorch(checkpoint, spec, manifest.source.get("revision"))
    return _summary(validate_against_pytorch(folder / FP32.file, model, spec, config, atol))


def _source_checkpoint(manifest: Manifest) -> Path | None:
    """The source checkpoint folder, if it is still there with its weights unchanged."""
    source = Path(manifest.source["checkpoint"])
    weights = manifest.source["weights"]
    if not source.is_dir() or not all((source / w["file"]).is_file() for w in weights):
        return None
    if any(sha256_file(source / w["file"]) != w["sha256"] for w in weights):
        return None
    return source


def _fp16(folder, spec, probes, reference) -> str:
    record = validate_fp16(folder / FP16.file, reference, spec, probes, "model.onnx")
    if record.get("passed"):
        return _summary(record)
    cpu_check = record.get("cpu_check")
    if isinstance(cpu_check, dict):
        return (f"NOT VALIDATED on CUDA (no CUDA provider here); on the CPU provider max abs diff "
                f"{max(cpu_check['max_abs_diff'].values()):.1e} <= {cpu_check['atol']:g}")
    return f"NOT VALIDATED on CUDA (no CUDA provider here); CPU check {cpu_check}"


def _int8(folder, manifest, spec, config, reference, calibration_texts) -> str:
    record = manifest.record(QUANTIZED)
    settings, note = recorded_settings(spec, record.target, calibration_texts)
    texts = settings.texts()
    batches = calibration_batches(folder, spec, config, texts)
    figures = fidelity(reference_outputs(reference, batches), OnnxModel(folder / QUANTIZED.file).run, spec, batches)
    line = f"{describe_fidelity(figures)} to fp32 on {len(texts)} texts ({settings.calibration_source}){note}"
    if not settings.meets(figures):
        raise ValidationError("int8 fidelity", report=[f"{line}: misses the target {settings.describe_target()}"])
    return f"{line}; target {settings.describe_target()}" + (f"; recorded {gate_summary(record.gate)}" if record.gate else "")


def _summary(figures: dict) -> str:
    worst = max(figures["max_abs_diff"].values())
    return f"max abs diff {worst:.1e} <= {figures['atol']:g} against {figures['reference']} on {', '.join(figures['probes'])}"
