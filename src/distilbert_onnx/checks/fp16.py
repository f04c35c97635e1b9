"""The fp16 graph's check: against fp32 on CUDA where there is one; without one the graph is marked
unvalidated and checked on the CPU provider instead (where onnxruntime has CPU kernels for it). Made
at build time (validate_fp16) and again by `validate` (fp16_checks, the table's check of the fp16 row)."""

from __future__ import annotations

from pathlib import Path

from ..errors import ArtifactError, first_line
from ..runtime.session import CUDA, OnnxModel
from ..tasks import TaskSpec
from ..variants import FP16, FP32
from .context import Check, FolderContext, summary
from .probes import Runner, check

FP16_ATOL = 5e-2  # float16 keeps ~3 significant digits; outputs of a few units differ in the 2nd decimal


def validate_fp16(path: Path, reference: Runner, spec: TaskSpec, probes, against: str) -> dict:
    """On CUDA when there is one. Without, the graph is marked unvalidated, and checked on the CPU
    provider instead where onnxruntime has CPU kernels for it: a graph that disagrees there is broken."""
    import onnxruntime as ort

    if CUDA in ort.get_available_providers():
        candidate = OnnxModel(path, device="cuda").run
        return {**check(reference, candidate, spec, probes, FP16_ATOL, path.name, against), "device": "cuda"}
    record = {
        "passed": None,
        "reason": "not validated on CUDA: no CUDA provider on the machine that exported it; run "
                  "`distilbert-onnx validate` on a GPU",
    }
    try:
        candidate = OnnxModel(path).run
    except ArtifactError as exc:  # onnxruntime without CPU kernels for some float16 op: nothing to check here
        record["cpu_check"] = f"not run: {first_line(exc.__context__ or exc)}"  # onnxruntime's own words
        return record
    figures = check(reference, candidate, spec, probes, FP16_ATOL, path.name, f"{against} (on the CPU provider)")
    record["cpu_check"] = {key: figures[key] for key in ("atol", "probes", "max_abs_diff")}
    return record


def fp16_checks(context: FolderContext) -> list[Check]:
    return [(FP16.file, f"validate {FP16.file}", lambda: _fp16(context))]


def _fp16(context: FolderContext) -> str:
    record = validate_fp16(context.folder / FP16.file, context.reference, context.spec, context.probes, FP32.file)
    if record.get("passed"):
        return summary(record)
    cpu_check = record.get("cpu_check")
    if isinstance(cpu_check, dict):
        return (f"NOT VALIDATED on CUDA (no CUDA provider here); on the CPU provider max abs diff "
                f"{max(cpu_check['max_abs_diff'].values()):.1e} <= {cpu_check['atol']:g}")
    return f"NOT VALIDATED on CUDA (no CUDA provider here); CPU check {cpu_check}"
