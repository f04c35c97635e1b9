"""Check an exported graph against the PyTorch model it came from, on onnxruntime's CPU provider.

The probes (probes.py) use shapes other than the export's example shape and mix full,
right-padded and left-padded rows; every output must agree within `atol` (padded positions of
per-token outputs excepted). Failures are all collected, then raised as one ValidationError.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..config import DistilBertConfig
from ..probes import Runner, check, make_probes, onnx_runner
from ..tasks import TaskSpec

DEFAULT_ATOL = 1e-4


def pytorch_runner(model: torch.nn.Module, spec: TaskSpec) -> Runner:
    """A Runner over the PyTorch model, with the outputs named as in the graph."""

    def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with torch.no_grad():
            outputs = model(torch.from_numpy(feeds["input_ids"]), torch.from_numpy(feeds["attention_mask"]))
        return {name: tensor.numpy() for name, tensor in zip(spec.output_names, outputs)}

    return run


def validate_against_pytorch(
    onnx_path: str | Path,
    model: torch.nn.Module,
    spec: TaskSpec,
    config: DistilBertConfig,
    atol: float = DEFAULT_ATOL,
) -> dict:
    """The validation figures for the manifest; a ValidationError listing every failure otherwise."""
    return check(
        reference=pytorch_runner(model, spec),
        candidate=onnx_runner(onnx_path),
        spec=spec,
        probes=make_probes(spec, config.vocab_size, config.pad_token_id),
        atol=atol,
        what=Path(onnx_path).name,
        against="PyTorch",
    )
