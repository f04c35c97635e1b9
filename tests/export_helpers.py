"""Exported folders of the tests' tiny checkpoints, made on first use (the `exported` fixture in
conftest.py; test_openvino.py's with the OpenVINO IRs)."""

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
