"""distilbert-onnx: DistilBERT checkpoints to validated, fused and quantized ONNX, served without torch.

    import distilbert_onnx as dox
    dox.export("path/or/hub-id", "artifacts/sst2")     # needs the [export] extra
    pipe = dox.load("artifacts/sst2")                    # onnxruntime, tokenizers, numpy only
    pipe("I love this!")

`export` imports torch lazily; `optimize`, `quantize` and `load` never import it.
"""

from __future__ import annotations

from pathlib import Path

from .errors import MissingExtraError
from .versions import this_version

__version__ = this_version()

__all__ = ["export", "optimize", "quantize", "validate", "load", "serve", "bulk", "__version__"]
# Front ends whose extras the base import never loads: dox.serve (the [serve] extra) and dox.bulk
# ([files] / [ray]) are imported on first use.
LAZY_MODULES = {"serve": "serving", "bulk": "bulk"}


def __getattr__(name: str):
    if name in LAZY_MODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{LAZY_MODULES[name]}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def export(
    model: str | Path,
    output: str | Path,
    task: str | None = None,
    optimize: bool = True,
    quantize: bool = True,
    *,
    fp16: bool = False,
    openvino: bool | None = None,
    opset: int | None = None,
    atol: float | None = None,
    calibration_texts: str | Path | list[str] | None = None,
    require_int8: bool = False,
    force: bool = False,
    revision: str | None = None,
    echo=None,
    **settings,
):
    """Export a DistilBERT checkpoint (folder or Hub id) to a deployable folder; returns an ExportResult.

    The task comes from config.json `architectures` unless given. The fp32 graph is validated against
    PyTorch; `optimize` adds the fused graph (and the fp16 one with `fp16`, each variant made only on
    request with its keyword: variants.OPT_IN), `quantize` the int8 one,
    measured on `calibration_texts` against the head's fidelity target; `settings` are the other
    keywords of QuantizeSettings.from_options: the target's bounds (max_prob_diff and min_agreement
    for classifiers, token classification, fill-mask and QA; min_cosine and min_worst_cosine for
    embeddings; targets.py), calibration_data with columns and calibration_rows, and the metric gate
    (eval_data, label_column, eval_rows, max_metric_drop). `openvino` adds the OpenVINO IRs (fp32, and int8
    with `quantize`): by default when openvino (and NNCF for int8) is installed, with a progress line
    saying what was skipped otherwise. An int8 variant that cannot meet its target is left out (the
    manifest's `left_out` says why) unless `require_int8`, which makes it an error. Options left at
    None take their defaults from distilbert_onnx.options.
    """
    try:
        from .exporting.job import export_checkpoint
    except ImportError as exc:
        raise MissingExtraError(
            f"export needs PyTorch and onnx ({exc.name} is missing): pip install 'distilbert-onnx[export]'"
        ) from None
    from .checks.quantize_settings import QuantizeSettings
    from .variants import opt_in_asked, pop_opt_in

    also = opt_in_asked(fp16=fp16, **pop_opt_in(settings))
    return export_checkpoint(
        model,
        output,
        task=task,
        opset=opset,
        optimize=optimize,
        quantize=quantize,
        also=also,
        openvino=openvino,
        atol=atol,
        quantize_settings=QuantizeSettings.from_options(calibration_texts, require_int8=require_int8, **settings),
        force=force,
        revision=revision,
        echo=echo,
    )


def optimize(folder: str | Path, fp16: bool = False, *, atol: float | None = None, echo=None, **opt_in: bool) -> dict:
    """Add the fused fp32 graph (and the fp16 one with `fp16`, each variant made only on request with
    its keyword: variants.OPT_IN) to an exported folder."""
    from .onnx_build.optimize import optimize_folder
    from .progress import Stages
    from .variants import opt_in_asked

    return optimize_folder(folder, opt_in_asked(fp16=fp16, **opt_in), atol=atol, stages=Stages(echo))


def quantize(folder: str | Path, *, echo=None, **options) -> dict:
    """Add the int8 graph to an exported folder; `options` as QuantizeSettings.from_options takes them."""
    from .onnx_build.quantize import quantize_folder
    from .checks.quantize_settings import QuantizeSettings
    from .progress import Stages

    return quantize_folder(folder, QuantizeSettings.from_options(**options), stages=Stages(echo))


def validate(folder: str | Path, calibration_texts: str | Path | None = None, *, echo=None) -> list[str]:
    """Re-check every variant of an exported folder (checks/folder.py): one line per check passed, a
    ValidationError listing every failure. model.onnx is checked against PyTorch again where the
    [export] extra is installed and the source checkpoint is unchanged."""
    from .checks.folder import validate_folder

    try:
        from .exporting.checkpoint import pytorch_reference
    except ImportError:  # no PyTorch: model.onnx is only run on the probes
        pytorch_reference = None
    return validate_folder(folder, calibration_texts, echo=echo, pytorch=pytorch_reference)


def load(folder: str | Path, device: str = "cpu", variant: str = "auto", backend: str = "auto", **options):
    """A pipeline for the folder's task (`device` cpu, cuda or auto).

    `variant="auto"` on the CPU runs the fastest variant that meets the folder's fidelity target on
    this machine (measured once per machine and cached); `backend` (auto, onnxruntime, openvino) limits
    it to one runtime. `pipe.variant`, `pipe.backend` and `pipe.precision` say what runs. Options:
    threads, max_tokens.
    """
    from .runtime.pipelines import load_pipeline

    return load_pipeline(folder, device=device, variant=variant, backend=backend, **options)
