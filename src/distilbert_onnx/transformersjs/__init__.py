"""Folders that transformers.js (npm `@huggingface/transformers`) loads as they are, in Node
(onnxruntime-node) and in the browser (onnxruntime-web, WASM): `package(folder, out)` writes one from
an exported folder. `operators.py` holds what the web runtime can run; `package.py` the layout."""

from .package import package

__all__ = ["package"]
