"""The built-in sample of varied English (data/sample_texts.txt), written for this project.

It is the default calibration set of `quantize` and the corpus the demo tokenizer is trained on.
"""

from __future__ import annotations

from importlib import resources


def sample_texts() -> list[str]:
    """One text per non-empty line of the sample."""
    text = resources.files("distilbert_onnx").joinpath("data/sample_texts.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]
