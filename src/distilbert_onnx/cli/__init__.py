"""The `distilbert-onnx` command: thin click commands over the package's functions, one module per
group of commands (build: export / optimize / quantize / validate / info / demo-checkpoint; openvino;
predict; benchmark; choose; evaluate; package; serve). `app.py` holds the group and the error handling they share."""

from __future__ import annotations

from . import benchmark, build, choose, evaluate, openvino, package, predict, serve  # noqa: F401  (each module registers its commands on main)
from .app import main

__all__ = ["main"]
