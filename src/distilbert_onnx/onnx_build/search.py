"""The accuracy search: which MatMuls to keep in fp32 so that int8 meets the fidelity target.

A node's sensitivity is the fidelity lost (targets.loss) when it alone runs as int8 (simulated,
simulate.py), per multiply-accumulate it would save. Nodes are kept in fp32 in that order: the fewest that meet the
target in simulation are found by doubling then bisecting, then confirmed on the real int8 graph
(with more nodes if the real graph misses). With a metric gate (checks/metric_gate.py) the real
graph must also keep the task's metric on the user's data within the drop allowed. Keeping more than
MAX_FP32_SHARE of the compute in fp32 is not worth int8: the search gives up with an error that
reports the best it reached.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import targets
from ..checks.fidelity import Batch, fidelity
from ..checks.metric_gate import MetricGate, gate_shortfall
from ..errors import QuantizationError
from ..checks.quantize_settings import MAX_FP32_SHARE, RELAX_HINT, SENSITIVITY_BATCHES, QuantizeSettings
from ..runtime.session import OnnxModel
from ..tasks import TaskSpec
from ..variants import QUANTIZED
from .simulate import SimulatedInt8
from .write_int8 import OP_TYPES, gemm_to_matmul, write_int8


@dataclass
class Attempt:
    """One int8 graph: which MatMuls stayed fp32, its share of the compute, and its fidelity."""

    path: Path
    kept_fp32: list[str]
    fp32_share: float
    fidelity: dict
    gate: dict | None = None  # its metric gate record (metric_gate.py), where the build has a gate
    variant = QUANTIZED  # what it becomes

    def as_model(self) -> OnnxModel:
        """The graph as the runtime runs it."""
        return OnnxModel(self.path, precision=QUANTIZED.precision)


@dataclass(frozen=True)
class MatMulNode:
    name: str
    macs: int  # multiply-accumulates per token


def keep_fp32_until_target(
    source: Path,
    work: Path,
    first: Attempt,
    spec: TaskSpec,
    settings: QuantizeSettings,
    batches: list[Batch],
    expected: list[dict],
    gate: MetricGate | None = None,
) -> Attempt:
    """The int8 graph of `source` that meets the target (and the metric `gate`) with the fewest
    MatMuls kept in fp32."""
    work.mkdir(parents=True)
    prepared = gemm_to_matmul(source)
    nodes = quantizable_nodes(prepared)
    total_macs = sum(node.macs for node in nodes) or 1

    def attempt(kept: list[MatMulNode]) -> Attempt:
        path = write_int8(source, work / f"int8-{len(kept)}.onnx", settings.per_channel, [n.name for n in kept])
        made = Attempt(path, [node.name for node in kept], sum(n.macs for n in kept) / total_macs,
                       fidelity(expected, OnnxModel(path).run, spec, batches))
        return settings.judged(made, gate)

    simulated = SimulatedInt8(prepared, [node.name for node in nodes], settings.per_channel)
    everything = {node.name for node in nodes}

    def simulated_figures(kept: list[MatMulNode]) -> dict:
        return fidelity(expected, simulated.runner(everything - {node.name for node in kept}), spec, batches)

    # Sensitivity: the fidelity lost when a node alone is int8, per multiply-accumulate it saves.
    sample = min(SENSITIVITY_BATCHES, len(batches))
    loss = {
        node.name: targets.loss(fidelity(expected[:sample], simulated.runner({node.name}), spec, batches[:sample]), spec)
        for node in nodes
    }
    order = sorted(nodes, key=lambda node: loss[node.name] / node.macs, reverse=True)
    shares = np.cumsum([node.macs for node in order]) / total_macs
    affordable = int(np.searchsorted(shares, MAX_FP32_SHARE, side="right"))
    high = _fewest(affordable, lambda count: settings.meets(simulated_figures(order[:count])))
    # The simulation is close, not bit-exact: confirm on the real int8 graph (and its metric, with a
    # gate), adding nodes if it misses.
    final = None
    for count in _widening(high, affordable) if high else []:
        final = attempt(order[:count])
        if settings.accepted(final, gate):
            return final
    best = final.fidelity if final else simulated_figures(order[:affordable])
    missed = settings.shortfalls(best) or gate_shortfall(final.gate if final else None) or "meets it only in simulation"
    raise QuantizationError(
        f"int8 misses the target ({settings.describe_goal(gate)}) even with the {affordable} most sensitive MatMuls "
        f"({shares[affordable - 1] if affordable else 0:.0%} of the compute, the most allowed) kept in fp32: "
        f"best {missed} (all int8: {settings.shortfalls(first.fidelity) or gate_shortfall(first.gate)}). {RELAX_HINT}"
    )


def _fewest(affordable: int, meets) -> int | None:
    """The smallest count in 1..affordable for which `meets(count)`, assuming more never hurts: double
    the count, then bisect. None when even `affordable` does not meet it."""
    low, high = 0, None
    for count in sorted({min(2**i, affordable) for i in range(affordable.bit_length() + 1)} - {0}):
        if meets(count):
            high = count
            break
        low = count
    while high is not None and high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if meets(middle) else (middle, high)
    return high


def _widening(start: int, stop: int) -> list[int]:
    """start, start + 1, start + 3, start + 7, ... and finally stop."""
    counts, step = [], 1
    while start < stop:
        counts.append(start)
        start, step = start + step, step * 2
    return counts + [stop]


def quantizable_nodes(model) -> list[MatMulNode]:
    """The MatMul / Attention nodes of `model` with a constant weight: what dynamic quantization converts."""
    shapes = {init.name: tuple(init.dims) for init in model.graph.initializer}
    nodes = []
    for node in model.graph.node:
        if node.op_type in OP_TYPES and len(node.input) > 1 and len(shapes.get(node.input[1], ())) == 2:
            rows, columns = shapes[node.input[1]]
            nodes.append(MatMulNode(node.name, rows * columns))
    return nodes
