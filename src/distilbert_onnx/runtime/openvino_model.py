"""OpenVINO models: an IR compiled for the CPU, with OnnxModel's small interface.

`run(feeds)` returns the outputs by name as numpy arrays, so the Pipeline and every task's pre- and
post-processing run unchanged on it; the checks and builders run IRs through it too (an IR file, or an
openvino.Model in memory such as NNCF's int8 result). openvino is an optional extra and is imported
only here, when a model is made (`import_openvino` says how to install it when it is missing); this
module holds the process's one OpenVINO Core and says whether the CPU computes bf16 natively.

Compile settings: the LATENCY performance hint (one stream: the pipeline runs one batch at a time and
uses every thread for it), INFERENCE_NUM_THREADS, and INFERENCE_PRECISION_HINT set explicitly, bf16 or
f32, because OpenVINO would otherwise pick bf16 by itself on a CPU with native bf16. Compiled models
are cached (OpenVINO's CACHE_DIR) under `cache_root()/openvino`, so a second cold start imports the
compiled blob instead of compiling again. The IR's batch and sequence axes are dynamic: one compiled
model serves every shape (OpenVINO keeps the shape-specific work of recent shapes itself).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import numpy as np

from ..errors import ArtifactError, MissingExtraError, OptionError
from ..variants import INT8
from .session import check_threads

logger = logging.getLogger("distilbert_onnx")

INSTALL = "pip install 'distilbert-onnx[openvino]'"
PRECISIONS = ("f32", "bf16")
PERFORMANCE_HINT = "LATENCY"
SEQUENCE_BUCKET = 16


def import_openvino():
    """The openvino module; a MissingExtraError saying how to install it when it cannot be imported."""
    try:
        import openvino
    except ImportError as exc:
        raise MissingExtraError(f"the OpenVINO variants need openvino, which is not installed ({exc}): {INSTALL}") from None
    return openvino


def openvino_available() -> bool:
    """Whether openvino can be imported here (without importing it when it cannot)."""
    try:
        import_openvino()
    except MissingExtraError:
        return False
    return True


def openvino_version() -> str:
    return import_openvino().get_version()


def native_bf16() -> bool:
    """Whether OpenVINO's CPU plugin computes bf16 natively here (avx512_bf16 or AMX): it lists BF16
    among its OPTIMIZATION_CAPABILITIES only then."""
    return "BF16" in core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def cache_root() -> Path:
    """The per-user cache folder: $DISTILBERT_ONNX_CACHE, else $XDG_CACHE_HOME/distilbert-onnx, else
    ~/.cache/distilbert-onnx."""
    if os.environ.get("DISTILBERT_ONNX_CACHE"):
        return Path(os.environ["DISTILBERT_ONNX_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "distilbert-onnx"


_CORE = None
_CORE_LOCK = threading.Lock()


def core():
    """One openvino.Core per process (it holds the loaded plugins; making one costs time)."""
    global _CORE
    with _CORE_LOCK:
        if _CORE is None:
            _CORE = import_openvino().Core()
        return _CORE


def _compiled_cache_dir(precision: str) -> Path | None:
    """The folder for OpenVINO's compiled-model cache, made if needed; None (and a log line) when it
    cannot be made, so that the model is compiled without a cache rather than not at all.

    One folder per OpenVINO version and inference precision: OpenVINO 2026.4's cache key leaves the
    precision hint out, and a blob compiled for f32 imported under a bf16 hint crashes the process.
    """
    folder = cache_root() / "openvino" / import_openvino().get_version().split("-")[0] / precision
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        logger.warning("OpenVINO compiled-model cache disabled: cannot create %s (%s); every load compiles", folder, exc)
        return None
    return folder


class OpenVinoModel:
    """One OpenVINO IR compiled for the CPU: `run(feeds)` returns the outputs by name as numpy arrays.

    `source` is the IR's .xml (its .bin beside it) or an openvino.Model in memory (never cached).
    `inference_precision` is what the ops that are not int8 compute in: "f32" or "bf16" (bf16 only
    where the CPU computes it natively: the caller decides by the variant's precision rule, precision.py).
    `stored` is the IR's own precision (fp32, or int8 for an NNCF IR); `precision` names both, e.g.
    "bf16", "int8+f32". Inputs are padded to the next SEQUENCE_BUCKET tokens (at most `max_length`).
    """

    backend = "openvino"
    device = "cpu"

    def __init__(self, source, threads: int | None = None, precision: str = "f32", *, stored: str = "fp32",
                 max_length: int | None = None, cache: bool = True):
        in_memory = not isinstance(source, (str, Path))
        path = Path("in-memory model") if in_memory else Path(source)
        if not in_memory and (not path.is_file() or not path.with_suffix(".bin").is_file()):
            raise ArtifactError(f"no OpenVINO IR at {path} (needs {path.name} and {path.with_suffix('.bin').name})")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if precision == "bf16" and not native_bf16():
            raise OptionError("this CPU has no native bf16 (OpenVINO lists no BF16 capability): run the IR in f32")
        config = {
            "PERFORMANCE_HINT": PERFORMANCE_HINT,
            "INFERENCE_NUM_THREADS": check_threads(threads),
            "INFERENCE_PRECISION_HINT": precision,
        }
        cache_dir = _compiled_cache_dir(precision) if cache and not in_memory else None
        if cache_dir is not None:
            config["CACHE_DIR"] = str(cache_dir)
        try:
            self.compiled = core().compile_model(source if in_memory else str(path), "CPU", config)
        except RuntimeError as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ArtifactError(f"cannot load {path} ({reason}): the IR is damaged or not a DistilBERT model") from None
        self.path = path
        self.inference_precision = precision
        self.precision = f"{stored}+{precision}" if stored == INT8 else precision
        self.threads = config["INFERENCE_NUM_THREADS"]
        self.input_names = [port.get_any_name() for port in self.compiled.inputs]
        self.output_names = [port.get_any_name() for port in self.compiled.outputs]
        self.max_length = max_length
        sequence_axis = self.input_rank() - 1
        # Outputs with a (dynamic) sequence axis: their padded positions are cut off after a run.
        self._per_token = {
            name: sequence_axis for name, dims in self.output_shapes().items() if len(dims) > sequence_axis and dims[sequence_axis] is None
        }
        self._requests = threading.local()  # an infer request serves one call at a time: one per thread

    def __repr__(self) -> str:
        return f"<OpenVinoModel {self.path.name} {self.precision}, {self.threads} threads>"

    def input_rank(self, name: str = "input_ids") -> int:
        return self.compiled.input(name).get_partial_shape().rank.get_length()

    def output_shapes(self) -> dict[str, list]:
        """Each output's dimensions: an int where fixed, None where dynamic."""
        return {
            port.get_any_name(): [dim.get_length() if dim.is_static else None for dim in port.get_partial_shape()]
            for port in self.compiled.outputs
        }

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        request = getattr(self._requests, "request", None)
        if request is None:
            request = self._requests.request = self.compiled.create_infer_request()
        length = feeds["input_ids"].shape[-1]
        padded = -(-length // SEQUENCE_BUCKET) * SEQUENCE_BUCKET
        if self.max_length is not None:
            padded = max(length, min(padded, self.max_length))
        inputs = {name: _pad_last_axis(feeds[name], padded) for name in self.input_names}
        results = request.infer(inputs)
        outputs = {name: results[index] for index, name in enumerate(self.output_names)}
        if padded != length:
            for name, axis in self._per_token.items():
                outputs[name] = np.ascontiguousarray(outputs[name].take(np.arange(length), axis=axis))
        return outputs


def _pad_last_axis(array: np.ndarray, length: int) -> np.ndarray:
    """`array` with zeros appended along its last axis up to `length`."""
    if array.shape[-1] == length:
        return array
    return np.pad(array, [(0, 0)] * (array.ndim - 1) + [(0, length - array.shape[-1])])
