"""int8 for CPUs: onnxruntime's dynamic quantization, made accuracy-aware.

Weights of the MatMul and Attention ops become int8, symmetric, one scale per output channel by
default (per-tensor int8, the common default elsewhere, costs measurable accuracy); activations are
quantized to uint8 at run time. Embedding lookups stay fp32: quantizing them saves file size, not
time. The quantizer is told that tensors without a visible type are float (DefaultTensorType):
outputs of the fused ops have none for ONNX shape inference, and without it onnxruntime 1.31 stops
on fused graphs with "Unable to find data type for weight_name" (what breaks Optimum's optimize-then-
quantize path). Each head's Gemm is first rewritten as MatMul + Add, as the quantizer would do,
so that every node the accuracy search may keep in fp32 has a name it knows.

Accuracy-aware: the int8 graph is compared with fp32 on calibration texts (fidelity.py). If it misses
the target (mean cosine >= min_cosine and worst cosine >= min_worst_cosine), MatMuls are kept in
fp32, most sensitive per unit of compute first, until the target is met. A node's sensitivity is
the fidelity lost when it alone runs as int8, per multiply-accumulate; the search for the fewest
fp32 nodes runs on simulated int8 (simulate.py) and its answer is confirmed on the real int8 graph.
A target that cannot be met while keeping at most MAX_FP32_SHARE of the compute in fp32 is an
error; no graph is written.

The fused and the unfused fp32 graphs are both quantized this way when both exist; the faster one
that meets the target is shipped, and the manifest records both and why.
"""

from __future__ import annotations

import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..artifacts import VARIANTS, require_manifest, variant_record, write_manifest
from ..config import load_config
from ..errors import ArtifactError, OptionError, QuantizationError
from ..probes import Runner, onnx_runner
from ..progress import Stages
from ..samples import sample_texts
from ..tasks import TaskSpec, get_task
from .fidelity import Batch, calibration_batches, compare, fidelity, reference_outputs
from .simulate import SimulatedInt8
from .write_int8 import OP_TYPES, Int8Child, gemm_to_matmul, write_int8

DEFAULT_MIN_COSINE = 0.995
DEFAULT_MIN_WORST_COSINE = 0.98
MAX_FP32_SHARE = 0.5
SENSITIVITY_BATCHES = 4
TIMING_BATCHES = 6
GRAPHS = {"fused": VARIANTS["optimized"].file, "unfused": VARIANTS["fp32"].file}


@dataclass(frozen=True)
class QuantizeSettings:
    """What `quantize` does: weight granularity, the fidelity target, calibration texts, source graph."""

    per_channel: bool = True
    min_cosine: float | None = DEFAULT_MIN_COSINE
    min_worst_cosine: float | None = DEFAULT_MIN_WORST_COSINE
    calibration_texts: tuple[str, ...] | None = None
    calibration_source: str = "built-in sample of varied English"
    graph: str = "auto"

    @classmethod
    def from_options(
        cls,
        calibration_texts: str | Path | list[str] | None = None,
        min_cosine: float | None = None,
        min_worst_cosine: float | None = None,
        per_channel: bool | None = None,
        graph: str | None = None,
        target: bool = True,
    ) -> QuantizeSettings:
        """Settings from user options; None keeps a default, `target=False` drops the fidelity target."""
        settings = cls()
        if calibration_texts is not None:
            texts, source = _read_texts(calibration_texts)
            settings = replace(settings, calibration_texts=tuple(texts), calibration_source=source)
        for name, value in (("min_cosine", min_cosine), ("min_worst_cosine", min_worst_cosine)):
            if value is not None:
                if not 0.0 < value <= 1.0:
                    raise OptionError(f"{name.replace('_', '-')} must be in (0, 1], got {value}")
                settings = replace(settings, **{name: value})
        if not target:
            settings = replace(settings, min_cosine=None, min_worst_cosine=None)
        if per_channel is not None:
            settings = replace(settings, per_channel=per_channel)
        if graph is not None:
            if graph not in ("auto", *GRAPHS):
                raise OptionError(f"graph must be auto, fused or unfused, got {graph!r}")
            settings = replace(settings, graph=graph)
        return settings

    def texts(self) -> list[str]:
        if self.calibration_texts is not None:
            return list(self.calibration_texts)
        return sample_texts()

    def meets(self, figures: dict) -> bool:
        return (self.min_cosine is None or figures["mean_cosine"] >= self.min_cosine) and (
            self.min_worst_cosine is None or figures["min_cosine"] >= self.min_worst_cosine
        )

    def describe_target(self) -> str:
        parts = []
        if self.min_cosine is not None:
            parts.append(f"mean cosine >= {self.min_cosine}")
        if self.min_worst_cosine is not None:
            parts.append(f"worst cosine >= {self.min_worst_cosine}")
        return " and ".join(parts) or "none"


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
    activation: str
    weight: str
    macs: int  # multiply-accumulates per token


def quantize_folder(
    folder: str | Path,
    settings: QuantizeSettings | None = None,
    *,
    stages: Stages | None = None,
    started: dict[str, Int8Child] | None = None,
) -> dict:
    """Add model_quantized.onnx to an exported folder; returns its manifest entry.

    `started` holds all-int8 graphs already being written in child processes (by `export`).
    """
    folder = Path(folder)
    settings = settings or QuantizeSettings()
    stages = stages or Stages()
    manifest = require_manifest(folder)
    spec, config = get_task(manifest["task"]), load_config(folder)
    sources = _source_graphs(folder, settings.graph)
    texts = settings.texts()
    if not texts:
        raise OptionError("the calibration texts are empty: give a file with one text per line")
    granularity = "per-channel" if settings.per_channel else "per-tensor"
    names = list(sources)
    with tempfile.TemporaryDirectory(prefix=".quantize-", dir=folder) as work_dir:
        work = Path(work_dir)
        with stages(f"quantize the {' and '.join(names)} graph{'s' * (len(names) > 1)} to int8 ({granularity}); "
                    f"run fp32 on {len(texts)} calibration texts"):
            # The quantizer is single-threaded Python: one graph is quantized here while a thread runs
            # fp32 on the texts (onnxruntime releases the GIL) and measures the graphs that child
            # processes wrote; the others are written in child processes.
            children = {name: child for name, child in (started or {}).items()
                        if name in sources and child.per_channel == settings.per_channel}
            early = dict(children)
            waiting = [name for name in names if name not in children]
            for name in waiting[:-1]:
                children[name] = Int8Child(sources[name], work / f"{name}-int8.onnx", settings.per_channel)
            try:
                with ThreadPoolExecutor(max_workers=1) as thread:
                    background = thread.submit(_reference_and_early, folder, spec, config, texts, early)
                    if waiting:
                        write_int8(sources[waiting[-1]], work / f"{waiting[-1]}-int8.onnx", settings.per_channel, [])
                    batches, expected, figures, runners = background.result()
                firsts = {name: children[name].result() if name in children else work / f"{name}-int8.onnx"
                          for name in names}
            except BaseException:
                for child in children.values():
                    child.cancel()
                raise
        with stages("measure the int8 graphs against fp32 on the calibration texts"):
            for name in names:
                if name not in figures:
                    runners[name] = onnx_runner(firsts[name])
                    figures[name] = fidelity(expected, runners[name], spec, batches)
            seconds = _seconds(runners, spec, batches, expected) if len(names) > 1 else {}
            del runners
        attempts: dict[str, tuple[Attempt, Attempt]] = {}
        failures = []
        for name in names:
            first = Attempt(firsts[name], [], 0.0, figures[name])
            if settings.meets(first.fidelity):
                attempts[name] = (first, first)
                continue
            with stages(f"keep the {name} graph's most sensitive MatMuls in fp32 until the target is met"):
                try:
                    attempts[name] = (first, _search(sources[name], work / name, first, spec, settings, batches, expected))
                except QuantizationError as exc:
                    failures.append(f"{name}: {exc}")
        if not attempts:
            raise QuantizationError("; ".join(failures))
        searched = {name for name, (first, best) in attempts.items() if best is not first}
        if searched:
            with stages("time the int8 graphs on the calibration texts"):
                graphs = {name: best.path for name, (_, best) in attempts.items()}
                graphs.update({f"{name} all int8": attempts[name][0].path for name in searched})
                seconds = _seconds({name: onnx_runner(path) for name, path in graphs.items()}, spec, batches, expected)
        chosen = min(attempts, key=lambda name: seconds.get(name, 0.0))
        first, best = attempts[chosen]
        cost = seconds[chosen] / seconds[f"{chosen} all int8"] - 1.0 if chosen in searched else None
        os.replace(best.path, folder / VARIANTS["quantized"].file)  # same file system: an atomic rename
    quantization = {
        "method": "onnxruntime dynamic quantization",
        "weights": f"int8 symmetric, {'per output channel' if settings.per_channel else 'per tensor'}",
        "activations": "uint8, per tensor, computed at run time",
        "op_types": OP_TYPES,
        "source_graph": sources[chosen].name,
        "target": {"min_cosine": settings.min_cosine, "min_worst_cosine": settings.min_worst_cosine},
        "calibration": {"texts": len(texts), "source": settings.calibration_source},
        "kept_fp32": best.kept_fp32,
        "kept_fp32_compute_share": round(best.fp32_share, 4),
        "speed_cost_of_kept_fp32": None if cost is None else round(cost, 4),
        "candidates": {
            name: {
                "seconds_on_timing_batches": round(seconds[name], 4) if name in seconds else None,
                "kept_fp32": len(best_of.kept_fp32),
                "fidelity": best_of.fidelity,
            }
            for name, (_, best_of) in attempts.items()
        },
        "candidates_failed": failures,
        "chosen": chosen,
        "why": _why(chosen, list(attempts), seconds, failures),
    }
    record = variant_record(folder, VARIANTS["quantized"], quantization=quantization, fidelity=best.fidelity)
    manifest = require_manifest(folder)
    manifest["variants"]["quantized"] = record
    write_manifest(folder, manifest)
    return record


def _reference_and_early(folder: Path, spec: TaskSpec, config, texts: list[str], early: dict[str, Int8Child]):
    """The calibration batches, model.onnx's outputs on them, and for the `early` int8 graphs their
    fidelity and their runners."""
    batches = calibration_batches(folder, spec, config, texts)
    expected = reference_outputs(onnx_runner(folder / VARIANTS["fp32"].file), batches)
    runners = {name: onnx_runner(child.result()) for name, child in early.items()}
    figures = {name: fidelity(expected, runner, spec, batches) for name, runner in runners.items()}
    return batches, expected, figures, runners


def _seconds(runners: dict[str, Runner], spec: TaskSpec, batches: list[Batch], expected: list[dict]) -> dict[str, float]:
    """Seconds each graph takes over TIMING_BATCHES calibration batches, the graphs taking turns."""
    step = max(1, len(batches) // TIMING_BATCHES)
    timed = compare(expected[::step], runners, spec, batches[::step])
    return {name: result[1] for name, result in timed.items()}


def _source_graphs(folder: Path, graph: str) -> dict[str, Path]:
    wanted = list(GRAPHS) if graph == "auto" else [graph]
    sources = {name: folder / GRAPHS[name] for name in wanted if (folder / GRAPHS[name]).is_file()}
    if graph == "fused" and not sources:
        raise ArtifactError(f"{folder} has no fused graph to quantize: run distilbert-onnx optimize first")
    if not sources:
        raise ArtifactError(f"{folder} has no model.onnx to quantize")
    return sources


def _search(
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
    # The fewest fp32 nodes that meet the target in simulation: double the count, then bisect.
    low, high = 0, None
    for count in sorted({min(2**i, affordable) for i in range(affordable.bit_length() + 1)} - {0}):
        if settings.meets(simulated_figures(order[:count])):
            high = count
            break
        low = count
    while high is not None and high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if settings.meets(simulated_figures(order[:middle])) else (middle, high)
    # The simulation is close, not bit-exact: confirm on the real int8 graph, adding nodes if it misses.
    for count in _widening(high, affordable) if high else []:
        final = attempt(order[:count])
        if settings.meets(final.fidelity):
            return final
    best = simulated_figures(order[:affordable])
    raise QuantizationError(
        f"int8 misses the target ({settings.describe_target()}) even with the {affordable} most sensitive MatMuls "
        f"({shares[affordable - 1] if affordable else 0:.0%} of the compute, the most allowed) kept in fp32: "
        f"best mean cosine {best['mean_cosine']:.6f}, worst {best['min_cosine']:.6f} "
        f"(all int8: {first.fidelity['mean_cosine']:.6f}, {first.fidelity['min_cosine']:.6f}). "
        "Lower --min-cosine / --min-worst-cosine, or export with --no-quantize"
    )


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
            nodes.append(MatMulNode(node.name, node.input[0], node.input[1], rows * columns))
    return nodes


def _why(chosen: str, candidates: list[str], seconds: dict[str, float], failures: list[str]) -> str:
    others = [name for name in candidates if name != chosen]
    if not others:
        return "the only graph quantized" + ("; the other could not meet the target" if failures else "")
    other = others[0]
    return (
        f"faster: {seconds[chosen]:.3f} s against {seconds[other]:.3f} s for the {other} graph on "
        f"{TIMING_BATCHES} batches of calibration texts, both meeting the target"
    )


def _read_texts(source: str | Path | list[str]) -> tuple[list[str], str]:
    if isinstance(source, (list, tuple)):
        texts = [str(text) for text in source]
        return [text for text in texts if text.strip()], "given texts"
    path = Path(source)
    if not path.is_file():
        raise OptionError(f"no calibration text file at {path}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise OptionError(f"{path} is not UTF-8 text: give one text per line") from None
    return [line.strip() for line in lines if line.strip()], path.name
