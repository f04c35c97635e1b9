"""Simulated int8: one fp32 session in which any chosen set of MatMuls runs as if quantized.

For every candidate node the graph gets a boolean input. When it is set, the node's input goes
through DynamicQuantizeLinear and DequantizeLinear (exactly the uint8 per-tensor rounding of
onnxruntime's dynamic quantization) and its weight is replaced by its int8-rounded copy (symmetric,
per output channel or per tensor). The accuracy search can then measure any mix of int8 and fp32
MatMuls with one run, instead of writing and loading a quantized graph each time.
"""

from __future__ import annotations

import numpy as np

from ..checks.probes import Runner

INT8_LIMIT = 127  # symmetric int8 weights use [-127, 127], as onnxruntime's quantizer does


def int8_rounded(weight: np.ndarray, per_channel: bool) -> np.ndarray:
    """The weight as int8 symmetric quantization represents it (one scale per output column)."""
    limit = np.abs(weight).max(axis=0, keepdims=True) if per_channel else np.abs(weight).max()
    scale = np.where(limit > 0, limit / INT8_LIMIT, 1.0)
    return (np.clip(np.round(weight / scale), -INT8_LIMIT, INT8_LIMIT) * scale).astype(weight.dtype)


class SimulatedInt8:
    """`runner(quantized)` runs the graph with the nodes named in `quantized` simulated as int8.

    Built from a loaded ModelProto, which it rewrites (pass a copy to keep the original).
    """

    def __init__(self, model, node_names: list[str], per_channel: bool):
        import onnx
        import onnxruntime as ort
        from onnx import helper, numpy_helper

        initializers = {init.name: init for init in model.graph.initializer}
        self.flags = {}
        nodes = []
        for node in model.graph.node:
            if node.name in node_names:
                index = len(self.flags)
                flag = self.flags[node.name] = f"simulate_int8_{index}"
                model.graph.input.append(helper.make_tensor_value_info(flag, onnx.TensorProto.BOOL, []))
                x, w = node.input[0], node.input[1]
                rounded = numpy_helper.from_array(int8_rounded(numpy_helper.to_array(initializers[w]), per_channel),
                                                  f"{w}_int8_{index}")
                model.graph.initializer.append(rounded)
                names = [f"{flag}_{part}" for part in ("q", "scale", "zero", "x", "input", "weight")]
                nodes += [
                    helper.make_node("DynamicQuantizeLinear", [x], names[:3]),
                    helper.make_node("DequantizeLinear", names[:3], [names[3]]),
                    helper.make_node("Where", [flag, names[3], x], [names[4]]),
                    helper.make_node("Where", [flag, rounded.name, w], [names[5]]),
                ]
                node.input[0], node.input[1] = names[4], names[5]
            nodes.append(node)
        del model.graph.node[:]
        model.graph.node.extend(nodes)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        self.outputs = [output.name for output in self.session.get_outputs()]

    def runner(self, quantized: set[str]) -> Runner:
        switches = {flag: np.array(name in quantized) for name, flag in self.flags.items()}

        def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            return dict(zip(self.outputs, self.session.run(self.outputs, {**feeds, **switches})))

        return run
