"""The two runtimes a variant may run on, onnxruntime and OpenVINO, behind one `open_variant` call.

Which backend runs a variant is part of the variant (variants.VARIANTS); `backend=` in `load` only
narrows what `variant="auto"` may pick and refuses an explicit variant of the other backend, so a
backend is never swapped without saying so. What an OpenVINO variant computes in (f32 or bf16) follows
its precision rule (precision.py).
"""

from __future__ import annotations

from pathlib import Path

from ..config import DistilBertConfig, load_config
from ..errors import DeviceError, OptionError
from ..manifest import Manifest
from ..variants import AUTO, BACKENDS, OPENVINO, Variant
from .integrity import verify_variant
from .openvino_model import OpenVinoModel, import_openvino
from .precision import inference_precision
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


def open_variant(folder: Path, variant: Variant, device: str, threads: int | None, manifest: Manifest | None,
                 config: DistilBertConfig | None = None):
    """The model object of `variant` in `folder`: an OnnxModel or an OpenVinoModel, once its files are
    found to be the ones the manifest records (integrity.py). `config`: the folder's, if already read."""
    verify_variant(folder, variant, manifest)
    if variant.backend == OPENVINO:
        precision, why = inference_precision(variant, manifest)
        logger.info("%s computes in %s: %s", variant.name, precision, why)
        max_length = (config or load_config(folder)).max_position_embeddings
        return OpenVinoModel(folder / variant.file, threads=threads, precision=precision, stored=variant.precision,
                             max_length=max_length)
    return OnnxModel(folder / variant.file, device=device, threads=threads, precision=variant.precision)

