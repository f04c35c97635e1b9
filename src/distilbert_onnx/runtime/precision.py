"""The precision a variant computes in on this machine: its row's precision rule (variants.py), applied
in one place to what the folder's manifest records. The runtime (backends.open_variant), the auto
choice's machine key and `validate`'s re-measurement of the OpenVINO int8 IR all ask here.

- AS_STORED (the ONNX graphs): the graph's own precision.
- BF16_WHERE_RECORDED (the OpenVINO fp32 IR): bf16 where OpenVINO's CPU plugin has native bf16 and the
  manifest records that bf16 met the fidelity target at export (`bf16.meets_target`), else f32.
- AS_MEASURED (the OpenVINO int8 IR): its record's `inference_precision`, what its fidelity was
  measured with; f32 where that was bf16 but this CPU has no native bf16 (f32 is at least as close).
"""

from __future__ import annotations

from ..manifest import Manifest, describe_fidelity
from ..variants import AS_MEASURED, AS_STORED, BF16_WHERE_RECORDED, Variant
from .openvino_model import native_bf16


def inference_precision(variant: Variant, manifest: Manifest | None) -> tuple[str, str]:
    """(the precision `variant` computes in here, why): by its precision rule."""
    record = manifest.record(variant) if manifest else None
    return _RULES[variant.precision_rule](variant, record)


def _as_stored(variant: Variant, record) -> tuple[str, str]:
    return variant.precision, "the graph's own precision"


def _as_measured(variant: Variant, record) -> tuple[str, str]:
    measured = record.inference_precision if record else "f32"
    if measured == "bf16" and not native_bf16():
        return "f32", "its fidelity was measured with bf16, which this CPU has no native support for: f32 is at least as close"
    return measured, f"the precision its fidelity was measured in ({measured})"


def _bf16_where_recorded(variant: Variant, record) -> tuple[str, str]:
    bf16 = (record.bf16 if record else None) or {}
    if not native_bf16():
        return "f32", "this CPU has no native bf16"
    if bf16.get("meets_target") is True:
        return "bf16", f"native bf16 here, and bf16 met the fidelity target at export ({_figures(bf16.get('fidelity'))})"
    if bf16.get("fidelity") is None:
        return "f32", f"the folder records no bf16 fidelity ({bf16.get('reason', 'not measured at export')})"
    return "f32", f"bf16 missed the fidelity target at export ({_figures(bf16.get('fidelity'))})"


_RULES = {AS_STORED: _as_stored, AS_MEASURED: _as_measured, BF16_WHERE_RECORDED: _bf16_where_recorded}


def _figures(fidelity: dict | None) -> str:
    return describe_fidelity(fidelity) if fidelity else "no figures"
