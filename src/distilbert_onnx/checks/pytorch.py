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
from ..options import ATOL
from ..tasks import TaskSpec
from ..runtime.session import OnnxModel
from .probes import Runner, check, make_probes


def pytorch_runner(model: torch.nn.Module, spec: TaskSpec) -> Runner:
    """A Runner over the PyTorch model, with the outputs named as in the graph.

    It remembers its results, so the fused graph is checked against the same PyTorch outputs as
    model.onnx without running PyTorch again.
    """
    results: dict[bytes, dict[str, np.ndarray]] = {}

    def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        input_ids, attention_mask = feeds["input_ids"], feeds["attention_mask"]
        key = repr(input_ids.shape).encode() + input_ids.tobytes() + attention_mask.tobytes()
        if key not in results:
            with torch.no_grad():
                outputs = model(torch.from_numpy(input_ids), torch.from_numpy(attention_mask))
            results[key] = {name: tensor.numpy() for name, tensor in zip(spec.output_names, outputs)}
        return results[key]

    return run


def validate_against_pytorch(
    onnx_path: str | Path,
    reference: Runner,
    spec: TaskSpec,
    config: DistilBertConfig,
    atol: float = ATOL.default,
) -> dict:
    """The validation figures for the manifest; a ValidationError listing every failure otherwise.

    `reference` is the PyTorch model's pytorch_runner.
    """
    return check(
        reference=reference,
        candidate=OnnxModel(onnx_path).run,
        spec=spec,
        probes=make_probes(spec, config.vocab_size, config.pad_token_id),
        atol=atol,
        what=Path(onnx_path).name,
        against="PyTorch",
    )
