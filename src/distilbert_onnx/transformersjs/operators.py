"""The operators a packaged graph may use: what onnxruntime-web's WASM backend runs.

The WASM build registers ONNX's standard operators; of onnxruntime's own (com.microsoft) operators it
is checked here only for those this project's fused and int8 graphs use, each run for real in
onnxruntime-web by tests/test_transformersjs_node.py (in Node) and in Chromium. A graph using any other
contrib operator is not packaged as it is: package.py says so, and for int8 writes a graph that runs.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from ..errors import MissingExtraError

STANDARD_DOMAINS = ("", "ai.onnx")
CONTRIB_DOMAIN = "com.microsoft"
# com.microsoft operators checked to run in onnxruntime-web (WASM) with the versions below.
WEB_CONTRIB_OPS = frozenset({"Attention", "BiasGelu", "EmbedLayerNormalization", "QAttention", "SkipLayerNormalization"})
# The npm packages the check (and the tests) ran with; tests/test_transformersjs_package.py keeps
# this line equal to js/package-lock.json.
CHECKED_WITH = {"@huggingface/transformers": "4.3.2", "onnxruntime-web": "1.31.0-dev.20260914-8d85527a0"}


def graph_operators(path: str | Path) -> Counter:
    """(domain, op_type) -> count of the graph's nodes; the standard domain is written "ai.onnx"."""
    try:
        import onnx
    except ImportError as exc:
        raise MissingExtraError(f"package reads the graphs with onnx ({exc.name} is missing): "
                                "pip install 'distilbert-onnx[optimize]'") from None
    model = onnx.load(str(path), load_external_data=False)
    return Counter((node.domain or "ai.onnx", node.op_type) for node in model.graph.node)


def unsupported_operators(path: str | Path, contrib_ops: frozenset[str] = WEB_CONTRIB_OPS) -> list[str]:
    """The graph's operators the web runtime lacks, as "domain.op_type", sorted; [] when it runs there."""
    missing = set()
    for domain, op_type in graph_operators(path):
        if domain in STANDARD_DOMAINS or (domain == CONTRIB_DOMAIN and op_type in contrib_ops):
            continue
        missing.add(f"{domain}.{op_type}")
    return sorted(missing)
