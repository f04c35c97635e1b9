"""onnxruntime sessions: the execution provider, session options, and IO binding on CUDA.

`device="cuda"` uses the CUDA execution provider or fails with the providers that are available:
onnxruntime would otherwise quietly run on the CPU. `device="auto"` takes CUDA when it is there and
says which device it picked. CPU sessions use as many threads as the machine has cores unless told
otherwise. On CUDA, inputs and outputs go through IO binding.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ..errors import ArtifactError, DeviceError, first_line, positive_int

logger = logging.getLogger("distilbert_onnx")

# What checks and builders run a graph as: feeds in, outputs by name out (a model's `run`).
Runner = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"


def resolve_device(device: str) -> str:
    """'cpu' or 'cuda' for `device` (cpu, cuda or auto); a DeviceError if CUDA cannot be had."""
    available = ort.get_available_providers()
    if device == "auto":
        chosen = "cuda" if CUDA in available else "cpu"
        logger.info("device=auto picked %s (available providers: %s)", chosen, ", ".join(available))
        return chosen
    if device == "cuda" and CUDA not in available:
        raise DeviceError(
            f"CUDA was asked for but this onnxruntime has no CUDAExecutionProvider (available: {', '.join(available)}); "
            "install onnxruntime-gpu on a machine with an NVIDIA GPU, or use device='cpu'"
        )
    if device not in ("cpu", "cuda"):
        raise DeviceError(f"unknown device {device!r}: choose cpu, cuda or auto")
    return device


def check_threads(threads: int | None) -> int:
    """The CPU threads to use: `threads` if it is a positive integer, every core for None."""
    if threads is None:
        return default_threads()
    return positive_int("threads", threads, " (or None for every core)")


def default_threads() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class OnnxModel:
    """One graph on one device: `run(feeds)` returns the outputs by name as numpy arrays.

    `precision` names what the graph computes in (fp32, fp16, int8) where the caller knows it.
    """

    backend = "onnxruntime"

    def __init__(self, path: str | Path, device: str = "cpu", threads: int | None = None, precision: str | None = None):
        path = Path(path)
        if not path.is_file():
            raise ArtifactError(f"no model file at {path}")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = check_threads(threads)
        options.log_severity_level = 3
        providers = [CUDA, CPU] if device == "cuda" else [CPU]
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own Fail / InvalidProtobuf / InvalidGraph types
            raise ArtifactError(f"cannot load {path} ({first_line(exc)}): the file is damaged or not an ONNX model") from None
        if device == "cuda" and self.session.get_providers()[0] != CUDA:
            raise DeviceError(
                f"onnxruntime could not start the CUDA provider for {path.name} (it fell back to "
                f"{', '.join(self.session.get_providers())}); check the CUDA and cuDNN libraries"
            )
        self.device = device
        self.path = path
        self.precision = precision or "as stored"
        self.input_names = [node.name for node in self.session.get_inputs()]
        self.output_names = [node.name for node in self.session.get_outputs()]

    def input_rank(self, name: str = "input_ids") -> int:
        return len(next(node.shape for node in self.session.get_inputs() if node.name == name))

    def output_shapes(self) -> dict[str, list]:
        return {node.name: list(node.shape) for node in self.session.get_outputs()}

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds = {name: feeds[name] for name in self.input_names}
        if self.device == "cuda":
            return self._run_bound(feeds)
        return dict(zip(self.output_names, self.session.run(self.output_names, feeds)))

    def _run_bound(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Inputs copied to the GPU once, outputs left there by the kernels and copied back at the end."""
        binding = self.session.io_binding()
        for name, array in feeds.items():
            binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array), "cuda", 0))
        for name in self.output_names:
            binding.bind_output(name, "cuda", 0)
        self.session.run_with_iobinding(binding)
        return dict(zip(self.output_names, binding.copy_outputs_to_cpu()))
