"""Write one int8 graph with onnxruntime's dynamic quantizer, here or in a child process.

onnxruntime's quantizer is single-threaded Python, so `quantize` writes the all-int8 graph of one
fp32 graph in a child process (`python -m distilbert_onnx.onnx_build.write_int8 SOURCE TARGET
--per-channel`) while it works on the other; `export` starts the unfused one as soon as model.onnx
is validated, so that it runs while the graph is being fused.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from ..errors import QuantizationError
from .embedding_int8 import store_word_embeddings_int8
from .logs import captured_logs

OP_TYPES = ["MatMul", "Attention"]


def gemm_to_matmul(path: Path):
    """The graph at `path`, loaded, with each Gemm (the heads' Linear layers on pooled vectors) as
    MatMul + Add.

    onnxruntime's dynamic quantizer makes that change itself, under names of its own; made here,
    every node the accuracy search may keep in fp32 has a name it knows.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    initializers = {init.name: init for init in model.graph.initializer}
    nodes = []
    for node in model.graph.node:
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        plain = attributes.get("alpha", 1.0) == 1.0 and attributes.get("beta", 1.0) == 1.0 and not attributes.get("transA")
        if node.op_type != "Gemm" or not plain or node.input[1] not in initializers:
            nodes.append(node)
            continue
        weight = initializers[node.input[1]]
        if attributes.get("transB"):
            weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight).T.copy(), weight.name))
        product = node.output[0] + "_matmul" if len(node.input) > 2 else node.output[0]
        nodes.append(helper.make_node("MatMul", node.input[:2], [product], name=node.name))
        if len(node.input) > 2:
            nodes.append(helper.make_node("Add", [product, node.input[2]], node.output, name=node.name + "_bias"))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model


def write_int8(source: Path, target: Path, per_channel: bool, keep_fp32: list[str]) -> Path:
    """Quantize the graph at `source` to `target`, the nodes named in `keep_fp32` left in fp32, the
    word-embedding table stored as int8 (embedding_int8.py)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with captured_logs():
        quantize_dynamic(
            gemm_to_matmul(source),
            str(target),
            op_types_to_quantize=OP_TYPES,
            per_channel=per_channel,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=keep_fp32,
            # Outputs of the fused ops (Attention, SkipLayerNormalization, ...) have no type that ONNX
            # shape inference can see; every one this quantizer reads is a float tensor.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    model = onnx.load(str(target))
    if store_word_embeddings_int8(model):
        onnx.save(model, str(target))
    return target


class Int8Child:
    """write_int8(source, target, per_channel, []) running in a new Python process."""

    def __init__(self, source: Path, target: Path, per_channel: bool):
        self.source, self.target, self.per_channel = Path(source), Path(target), per_channel
        package_root = str(Path(__file__).resolve().parents[2])
        paths = [package_root, os.environ.get("PYTHONPATH")]
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in paths if path)}
        command = [sys.executable, "-m", "distilbert_onnx.onnx_build.write_int8", str(source), str(target)]
        if per_channel:
            command.append("--per-channel")
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=environment
        )
        self.errors: str | None = None

    def result(self) -> Path:
        """The int8 graph, once written (waits for it); a QuantizationError if the child failed."""
        if self.errors is None:
            self.errors = self.process.communicate()[1] or ""
        if self.process.returncode:
            lines = self.errors.strip().splitlines()
            reason = lines[-1] if lines else f"exit status {self.process.returncode}"
            raise QuantizationError(f"quantizing {self.source.name} failed: {reason}")
        return self.target

    def cancel(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.target.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="Write the all-int8 graph of SOURCE to TARGET.")
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--per-channel", action="store_true")
    arguments = parser.parse_args()
    write_int8(arguments.source, arguments.target, arguments.per_channel, [])


if __name__ == "__main__":
    main()
