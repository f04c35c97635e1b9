"""The accuracy search: which MatMuls to keep in fp32 so that int8 meets the fidelity target.

A node's sensitivity is the fidelity lost when it alone runs as int8 (simulated, simulate.py), per
multiply-accumulate it would save. Nodes are kept in fp32 in that order: the fewest that meet the
target in simulation are found by doubling then bisecting, then confirmed on the real int8 graph
(with more nodes if the real graph misses). Keeping more than MAX_FP32_SHARE of the compute in fp32
is not worth int8: the search gives up with an error that reports the best it reached.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..checks.fidelity import Batch, fidelity
from ..checks.probes import onnx_runner
from ..errors import QuantizationError
from ..manifest import describe_fidelity
from ..quantize_settings import MAX_FP32_SHARE, SENSITIVITY_BATCHES, QuantizeSettings
from ..tasks import TaskSpec
from .simulate import SimulatedInt8
from .write_int8 import OP_TYPES, gemm_to_matmul, write_int8


@dataclass
class Attempt:
    """One int8 graph: which MatMuls stayed fp32, its share of the compute, and its fidelity."""

    path: Path
    kept_fp32: list[str]
    fp32_share: float
    fidelity: dict


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
) -> Attempt:
    """The int8 graph of `source` that meets the target with the fewest MatMuls kept in fp32."""
    work.mkdir(parents=True)
    prepared = gemm_to_matmul(source)
    nodes = quantizable_nodes(prepared)
    total_macs = sum(node.macs for node in nodes) or 1

    def attempt(kept: list[MatMulNode]) -> Attempt:
        path = write_int8(source, work / f"int8-{len(kept)}.onnx", settings.per_channel, [n.name for n in kept])
        figures = fidelity(expected, onnx_runner(path), spec, batches)
        return Attempt(path, [node.name for node in kept], sum(n.macs for n in kept) / total_macs, figures)

    simulated = SimulatedInt8(prepared, [node.name for node in nodes], settings.per_channel)
    everything = {node.name for node in nodes}

    def simulated_figures(kept: list[MatMulNode]) -> dict:
        return fidelity(expected, simulated.runner(everything - {node.name for node in kept}), spec, batches)

    # Sensitivity: the fidelity lost when a node alone is int8, per multiply-accumulate it saves.
    sample = min(SENSITIVITY_BATCHES, len(batches))
    loss = {
        node.name: 1.0 - fidelity(expected[:sample], simulated.runner({node.name}), spec, batches[:sample])["mean_cosine"]
        for node in nodes
    }
    order = sorted(nodes, key=lambda node: loss[node.name] / node.macs, reverse=True)
    shares = np.cumsum([node.macs for node in order]) / total_macs
    affordable = int(np.searchsorted(shares, MAX_FP32_SHARE, side="right"))
    high = _fewest(affordable, lambda count: settings.meets(simulated_figures(order[:count])))
    # The simulation is close, not bit-exact: confirm on the real int8 graph, adding nodes if it misses.
    for count in _widening(high, affordable) if high else []:
        final = attempt(order[:count])
        if settings.meets(final.fidelity):
            return final
    best = simulated_figures(order[:affordable])
    raise QuantizationError(
        f"int8 misses the target ({settings.describe_target()}) even with the {affordable} most sensitive MatMuls "
        f"({shares[affordable - 1] if affordable else 0:.0%} of the compute, the most allowed) kept in fp32: "
        f"best {describe_fidelity(best, digits=6)} "
        f"(all int8: {first.fidelity['mean_cosine']:.6f}, {first.fidelity['min_cosine']:.6f}). "
        "Lower --min-cosine / --min-worst-cosine, or export with --no-quantize"
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
