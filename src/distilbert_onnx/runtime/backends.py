"""The two runtimes a variant may run on, onnxruntime and OpenVINO, behind one `open_variant` call.

Which backend runs a variant is part of the variant (variants.VARIANTS); `backend=` in `load` only
narrows what `variant="auto"` may pick and refuses an explicit variant of the other backend, so a
backend is never swapped without saying so. The OpenVINO variant `openvino` (the fp32 IR) computes in
bf16 only where the CPU has native bf16 and the folder records that bf16 met the fidelity target at
export; `openvino-int8` runs its non-int8 ops in the precision its fidelity was measured in.
"""

from __future__ import annotations

from pathlib import Path

from ..config import DistilBertConfig, load_config
from ..errors import DeviceError, OptionError
from ..manifest import Manifest, describe_fidelity
from ..variants import AS_MEASURED, AUTO, BACKENDS, OPENVINO, Variant
from .integrity import verify_variant
from .openvino_model import OpenVinoModel, import_openvino, native_bf16
from .session import OnnxModel, logger


def check_backend(backend: str, device: str) -> str:
    """`backend` if it can be used on `device` (cpu or cuda); clear errors otherwise. Asking for
    OpenVINO where openvino is not installed is a MissingExtraError."""
    if backend not in BACKENDS:
        raise OptionError(f"unknown backend {backend!r}: choose {', '.join(BACKENDS)}")
    if backend == OPENVINO:
        if device != "cpu":
            raise DeviceError(f"the OpenVINO backend runs on the CPU only, not {device}: use device='cpu' or backend='onnxruntime'")
        import_openvino()
    return backend


def check_variant_backend(variant: Variant, backend: str) -> None:
    """An explicit variant must belong to the backend asked for."""
    if backend not in (AUTO, variant.backend):
        raise OptionError(
            f"variant {variant.name} runs on the {variant.backend} backend, not {backend}: "
            f"pass backend='{variant.backend}' or 'auto', or choose a variant of {backend}"
        )


def openvino_precision(variant: Variant, manifest: Manifest | None) -> tuple[str, str]:
    """(inference precision, why) for an OpenVINO variant on this CPU: "bf16" or "f32".

    By the variant's precision rule: bf16 where native and the manifest's `bf16.meets_target` is true
    (the fp32 IR); or the record's `inference_precision` (what its fidelity was measured with; "f32"
    when absent), f32 where that was bf16 but this CPU has no native bf16 (the int8 IR).
    """
    record = manifest.record(variant) if manifest else None
    if variant.precision_rule == AS_MEASURED:
        measured = record.inference_precision if record else "f32"
        if measured == "bf16" and not native_bf16():
            return "f32", "its fidelity was measured with bf16, which this CPU has no native support for: f32 is at least as close"
        return measured, f"the precision its fidelity was measured in ({measured})"
    bf16 = (record.bf16 if record else None) or {}
    if not native_bf16():
        return "f32", "this CPU has no native bf16"
    if bf16.get("meets_target") is True:
        return "bf16", f"native bf16 here, and bf16 met the fidelity target at export ({_figures(bf16.get('fidelity'))})"
    if bf16.get("fidelity") is None:
        return "f32", f"the folder records no bf16 fidelity ({bf16.get('reason', 'not measured at export')})"
    return "f32", f"bf16 missed the fidelity target at export ({_figures(bf16.get('fidelity'))})"


def open_variant(folder: Path, variant: Variant, device: str, threads: int | None, manifest: Manifest | None,
                 config: DistilBertConfig | None = None):
    """The model object of `variant` in `folder`: an OnnxModel or an OpenVinoModel, once its files are
    found to be the ones the manifest records (integrity.py). `config`: the folder's, if already read."""
    verify_variant(folder, variant, manifest)
    if variant.backend == OPENVINO:
        precision, why = openvino_precision(variant, manifest)
        logger.info("%s computes in %s: %s", variant.name, precision, why)
        max_length = (config or load_config(folder)).max_position_embeddings
        return OpenVinoModel(folder / variant.file, threads=threads, precision=precision, stored=variant.precision,
                             max_length=max_length)
    return OnnxModel(folder / variant.file, device=device, threads=threads, precision=variant.precision)


def _figures(fidelity: dict | None) -> str:
    if not fidelity:
        return "no figures"
    return describe_fidelity(fidelity)
