"""Run an OpenVINO IR (or any model OpenVINO reads) on the CPU as a probes.Runner, at a stated precision.

The precision is always set explicitly: on CPUs with native bf16 (AMX, AVX-512 BF16) OpenVINO's CPU
plugin otherwise runs float ops in bf16 by default, so an unstated precision would measure something
else on each machine. `f32` runs float ops in fp32 (an int8 IR's quantized ops stay int8), `bf16`
in bf16. Needs only openvino and numpy: no torch, no NNCF.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import MissingExtraError, OptionError
from .session import Runner

PRECISIONS = {"f32": "f32", "bf16": "bf16"}
INSTALL_HINT = "pip install 'distilbert-onnx[openvino]'"


def import_openvino():
    """The openvino module; a MissingExtraError naming the extra when it is not installed."""
    try:
        import openvino
    except ImportError:
        raise MissingExtraError(f"the OpenVINO variants need openvino, which is not installed: {INSTALL_HINT}") from None
    return openvino


def core():
    """One openvino.Core per process (it holds the plugins; making one costs time)."""
    global _CORE
    if _CORE is None:
        _CORE = import_openvino().Core()
    return _CORE


_CORE = None


def has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (OpenVINO's CPU capabilities list BF16)."""
    return "BF16" in core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def cpu_name() -> str:
    return str(core().get_property("CPU", "FULL_DEVICE_NAME"))


def openvino_runner(model: str | Path | object, precision: str = "f32", threads: int | None = None) -> Runner:
    """A Runner over `model` (an IR path or an openvino.Model) compiled for the CPU at `precision`."""
    if precision not in PRECISIONS:
        raise OptionError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "bf16" and not has_native_bf16():
        raise OptionError("this CPU has no native bf16 (OpenVINO lists no BF16 capability): run the IR in f32")
    config = {"INFERENCE_PRECISION_HINT": PRECISIONS[precision]}
    if threads is not None:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    source = str(model) if isinstance(model, (str, Path)) else model
    compiled = core().compile_model(source, "CPU", config)
    request = compiled.create_infer_request()
    outputs = [(port.get_any_name(), port) for port in compiled.outputs]

    def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        results = request.infer(feeds)
        return {name: np.array(results[port], copy=True) for name, port in outputs}

    return run
