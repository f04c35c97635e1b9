"""PyTorch -> ONNX for one task head, with the dynamic axes of its TaskSpec.

The TorchScript exporter (`torch.onnx.export(..., dynamo=False)`) at opset 17 is used on purpose: on
torch 2.13 and onnxruntime 1.31 its graphs keep the MatMul / Reshape / Transpose / Softmax pattern
that onnxruntime's transformer optimizer fuses into Attention, EmbedLayerNormalization,
SkipLayerNormalization and BiasGelu, and it exports a DistilBERT in a fraction of a second. The
torch.export-based exporter (the default since torch 2.9) needs opset 18+, emits a Gelu op and a
mask pattern the optimizer does not fuse, and takes seconds (see the README).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import torch

from ..config import DistilBertConfig
from ..tasks import INPUT_NAMES, TaskSpec

EXAMPLE_BATCH, EXAMPLE_SEQUENCE = 2, 16


def example_inputs(spec: TaskSpec, config: DistilBertConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The inputs the graph is traced with; validation then uses other shapes (probes.py)."""
    feeds = spec.example_feeds(config.vocab_size, EXAMPLE_BATCH, EXAMPLE_SEQUENCE)
    return tuple(torch.from_numpy(feeds[name]) for name in INPUT_NAMES)


def export_onnx(model: torch.nn.Module, spec: TaskSpec, config: DistilBertConfig, path: str | Path, opset: int) -> None:
    """Trace `model` to `path` at `opset` (checked by options.OPSET). The exporter's own chatter is
    kept off the terminal."""
    quiet = io.StringIO()
    with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(quiet):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            example_inputs(spec, config),
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=list(INPUT_NAMES),
            output_names=list(spec.output_names),
            dynamic_axes=spec.dynamic_axes(),
            do_constant_folding=True,
        )
