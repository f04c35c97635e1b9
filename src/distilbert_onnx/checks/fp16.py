"""The fp16 graph's check: against fp32 on CUDA where there is one; without one the graph is marked
unvalidated and checked on the CPU provider instead (where onnxruntime has CPU kernels for it)."""

from __future__ import annotations

from pathlib import Path

from ..errors import ArtifactError, first_line
from ..runtime.session import CUDA, OnnxModel
from ..tasks import TaskSpec
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
