"""Bulk inference on tables: Parquet, CSV or JSON Lines in, Parquet or JSON Lines out, one output row
per input row in input order, on this machine (`predict_file`) or on a Ray cluster (`predict_dataset`,
or `predict_file(..., engine="ray")`).

Needs pyarrow (the [files] extra) and, for Ray, ray[data] (the [ray] extra); `import distilbert_onnx`
imports neither. The entry points are in api.py; the engines are local.py and ray_engine.py, the Ray
file job's driver ray_driver.py.
"""

from __future__ import annotations

from .api import predict_dataset, predict_file

__all__ = ["predict_file", "predict_dataset"]
