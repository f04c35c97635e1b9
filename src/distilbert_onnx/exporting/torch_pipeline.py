"""The PyTorch checkpoint as a model the runtime's pipelines can run (the [export] extra): the
reference row of `evaluate --checkpoint`, through the same pre- and post-processing as every graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import MissingExtraError


class TorchModel:
    """A checkpoint's head in fp32 on the CPU: `run(feeds)` gives its outputs by their ONNX names."""

    backend = "torch"
    device = "cpu"
    precision = "fp32"

    def __init__(self, checkpoint, task: str, threads: int | None = None):
        try:
            import torch

            from .checkpoint import load_checkpoint
        except ImportError as exc:
            raise MissingExtraError(f"--checkpoint needs PyTorch ({exc.name} is missing): "
                                    "pip install 'distilbert-onnx[export]'") from None
        if threads:
            torch.set_num_threads(threads)
        self._torch = torch
        loaded = load_checkpoint(checkpoint, task)
        self.model = loaded.model
        self.output_names = loaded.task.output_names

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        with torch.inference_mode():
            outputs = self.model(torch.from_numpy(feeds["input_ids"]), torch.from_numpy(feeds["attention_mask"]))
        return {name: output.numpy() for name, output in zip(self.output_names, outputs)}


def torch_pipeline(checkpoint, folder: str | Path, threads: int | None = None):
    """FOLDER's task pipeline running the PyTorch `checkpoint`, reported as variant torch-fp32."""
    from ..runtime.pipelines import folder_task, pipeline_on

    return pipeline_on(TorchModel(checkpoint, folder_task(folder).name, threads), folder, "torch-fp32")
