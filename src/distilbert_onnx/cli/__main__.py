"""`python -m distilbert_onnx.cli`: the same as the `distilbert-onnx` command."""

from . import main

main()
