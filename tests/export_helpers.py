"""Exported folders of the tests' tiny checkpoints, made on first use (the `exported` fixture in
conftest.py; test_openvino.py's with the OpenVINO IRs), and the OpenVINO variants added to a folder
by the product's own builder (the `openvino_exported` fixture)."""

from __future__ import annotations

from pathlib import Path


class Exports:
    """Exported folders of the tiny checkpoints, made on first use and shared by the session."""

    def __init__(self, checkpoints: dict[str, Path], root: Path, openvino: bool = False):
        self.checkpoints = checkpoints
        self.root = root
        self.openvino = openvino
        self.folders: dict[str, Path] = {}

    def __getitem__(self, task: str) -> Path:
        if task not in self.folders:
            import distilbert_onnx as dox

            self.folders[task] = dox.export(self.checkpoints[task], self.root / task, openvino=self.openvino).folder
        return self.folders[task]


# The OpenVINO tests calibrate on this many of the sample texts (the builder's default is all of them).
OPENVINO_CALIBRATION_TEXTS = 24


def add_openvino(folder: Path, int8: bool = True, f32_only: bool = False) -> Path:
    """`folder` (in place) with the OpenVINO variants made by the product's builder, what
    `distilbert-onnx openvino FOLDER` runs, calibrated on a few sample texts to stay quick.

    `f32_only`: built to a fidelity target no bf16 run can meet (each bound at its strictest), so the
    manifest records that bf16 misses it and the fp32 IR computes in f32 on any CPU."""
    from distilbert_onnx.manifest import read_manifest
    from distilbert_onnx.openvino_build.build import openvino_folder
    from distilbert_onnx.checks.quantize_settings import QuantizeSettings
    from distilbert_onnx.samples import sample_texts
    from distilbert_onnx.targets import BOUNDS, MEASURES
    from distilbert_onnx.tasks import get_task

    bounds = {}
    if f32_only:
        spec = get_task(read_manifest(folder).task)
        bounds = {name: 1.0 if BOUNDS[name].at_least else 1e-9 for name in MEASURES[spec.compared_as][0]}
    settings = QuantizeSettings.from_options(sample_texts()[:OPENVINO_CALIBRATION_TEXTS], **bounds)
    openvino_folder(folder, settings, int8=int8)
    return Path(folder)
