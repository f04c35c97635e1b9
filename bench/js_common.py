"""What the transformers.js benchmarks share: the folder they measure (all-MiniLM-L6-v2 exported as
feature extraction, or any exported folder), packaged for transformers.js, and a Node script of js/
run on a job. Node and js/node_modules (cd js && npm ci --ignore-scripts) are needed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import distilbert_onnx as dox
from common import WORK, minilm_as_distilbert

JS = Path(__file__).resolve().parent.parent / "js"
# Per task: the options of a call on each side (sentence vectors for feature extraction).
OPTIONS = {
    "feature-extraction": ({"pooling": "mean", "normalize": True}, {"pooling": "mean", "normalize": True}),
    "text-classification": ({}, {}),
    "token-classification": ({}, {"aggregation_strategy": "none"}),
}


def exported_folder(folder: str | None) -> Path:
    """The exported folder given, or all-MiniLM-L6-v2 exported as feature extraction (made once)."""
    if folder:
        return Path(folder)
    minilm = WORK / "minilm"
    if not (minilm / "model_quantized.onnx").exists():
        dox.export(minilm_as_distilbert(), minilm, force=True, openvino=False)  # the IRs play no part here
    return minilm


def packaged(folder: Path) -> Path:
    """`folder` packaged for transformers.js under WORK/transformersjs/NAME (remade each run)."""
    from distilbert_onnx.transformersjs import package

    out = WORK / "transformersjs" / folder.name
    package(folder, out, force=True)
    return out


def node(script: str, job: dict) -> object:
    """Run js/SCRIPT on `job` (written to a JSON file); its JSON output."""
    if shutil.which("node") is None or not (JS / "node_modules").is_dir():
        sys.exit("needs node and js/node_modules: cd js && npm ci --ignore-scripts")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(job, handle)
    try:
        done = subprocess.run(["node", str(JS / script), handle.name], capture_output=True, text=True, cwd=JS)
    finally:
        Path(handle.name).unlink()
    if done.returncode:
        sys.exit(done.stderr[-3000:])
    return json.loads(done.stdout)
