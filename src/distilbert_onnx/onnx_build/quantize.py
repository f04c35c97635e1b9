"""int8 for CPUs: onnxruntime's dynamic quantization, made accuracy-aware.

Weights of the MatMul and Attention ops become int8, symmetric, one scale per output channel by
default (per-tensor int8, the common default elsewhere, costs measurable accuracy); activations are
quantized to uint8 at run time. The word-embedding table that input_ids indexes is stored int8 with a
scale per row, dequantized after the lookup (embedding_int8.py): half the file size of keeping it fp32,
in the fused graph too, where EmbedLayerNormalization is written out for it. The quantizer is told that tensors without a visible type are float (DefaultTensorType):
outputs of the fused ops have none for ONNX shape inference, and without it onnxruntime 1.31 stops
on fused graphs with "Unable to find data type for weight_name" (what breaks Optimum's optimize-then-
quantize path). Each head's Gemm is first rewritten as MatMul + Add, as the quantizer would do,
so that every node the accuracy search may keep in fp32 has a name it knows.

Accuracy-aware: the int8 graph is compared with fp32 on calibration texts (checks/fidelity.py), in
padded batches and one text per call, keeping the worse figure of the two. If it misses
the head's target (targets.py: probabilities for classifiers, the answer span for QA, cosine for
embeddings), MatMuls are kept in fp32, most sensitive per unit of compute first, until the target is
met (search.py). With --eval-data and --max-metric-drop each graph must also keep the task's metric
within the drop of fp32's (checks/metric_gate.py). A target that cannot be met is a
QuantizationError; no graph is written.

The fused and the unfused fp32 graphs are both quantized when both exist (one in a child process,
write_int8.py, while this one works on the other); the faster one that meets the target is
shipped, and the manifest records both and why.
"""

from __future__ import annotations

import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

from ..checks.fidelity import calibration_batches, fidelity, reference_outputs
from ..checks.metric_gate import MetricGate, open_gate
from ..config import load_config
from ..errors import ArtifactError, OptionError, QuantizationError
from ..manifest import require_manifest, update_manifest, variant_record
from ..progress import Stages
from ..checks.quantize_settings import QuantizeSettings
from ..runtime.session import OnnxModel
from ..tasks import TaskSpec, get_task
from ..timing import in_turns, synthetic_feeds
from ..variants import FP32, OPTIMIZED, QUANTIZED
from .search import Attempt, keep_fp32_until_target
from .write_int8 import OP_TYPES, Int8Child, write_int8

# The int8 candidates are timed on this shape, taking TIMING_ROUNDS turns each.
TIMING_SHAPE = (4, 128)
TIMING_ROUNDS = 7
GRAPHS = {"fused": OPTIMIZED.file, "unfused": FP32.file}


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
    stages = stages or Stages()
    manifest = require_manifest(folder)
    spec, config = get_task(manifest.task), load_config(folder)
    settings = (settings or QuantizeSettings()).for_task(spec)
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
            firsts, batches, expected, figures, models = _all_int8(
                folder, sources, work, settings, started or {}, spec, config, texts
            )
        with stages("measure the int8 graphs against fp32 on the calibration texts, and time them"):
            for name in names:
                if name not in figures:
                    models[name] = OnnxModel(firsts[name])
                    figures[name] = fidelity(expected, models[name].run, spec, batches)
            seconds = _seconds(models, spec, config) if len(names) > 1 else {}
            del models
        gate = None
        if settings.gate_file is not None:
            with stages(f"score fp32 on {settings.gate_file.path.name} for the metric gate"):
                gate = open_gate(folder, settings.gate_file, settings.max_metric_drop)
        attempts, failures = _meet_target(sources, work, firsts, figures, spec, settings, batches, expected, stages, gate)
        searched = {name for name, (first, best) in attempts.items() if best is not first}
        if searched:
            with stages("time the int8 graphs"):
                graphs = {name: best.path for name, (_, best) in attempts.items()}
                graphs.update({f"{name} all int8": attempts[name][0].path for name in searched})
                seconds = _seconds({name: OnnxModel(path) for name, path in graphs.items()}, spec, config)
        chosen = min(attempts, key=lambda name: seconds.get(name, 0.0))
        best = attempts[chosen][1]
        os.replace(best.path, folder / QUANTIZED.file)  # same file system: an atomic rename
    quantization = _quantization_record(folder, settings, sources, texts, attempts, failures, seconds, chosen, searched)
    record = variant_record(folder, QUANTIZED, quantization=quantization, fidelity=best.fidelity,
                            **({"gate": best.gate} if best.gate else {}))
    update_manifest(folder, {QUANTIZED.name: record})
    return record


def _meet_target(sources: dict[str, Path], work: Path, firsts: dict[str, Path], figures: dict[str, dict],
                 spec: TaskSpec, settings: QuantizeSettings, batches, expected, stages: Stages, gate: MetricGate | None):
    """Per source graph, (its all-int8 attempt, the attempt that meets the target and the gate), and
    the reasons of the graphs that cannot meet them; a QuantizationError when none can."""
    attempts: dict[str, tuple[Attempt, Attempt]] = {}
    failures = []
    for name in sources:
        first = settings.judged(Attempt(firsts[name], [], 0.0, figures[name]), gate)
        if settings.accepted(first, gate):
            attempts[name] = (first, first)
            continue
        with stages(f"keep the {name} graph's most sensitive MatMuls in fp32 until the target is met"):
            try:
                best = keep_fp32_until_target(sources[name], work / name, first, spec, settings, batches, expected, gate)
                attempts[name] = (first, best)
            except QuantizationError as exc:
                failures.append(f"{name}: {exc}")
    if not attempts:
        raise QuantizationError("; ".join(failures))
    return attempts, failures


def _quantization_record(folder: Path, settings: QuantizeSettings, sources: dict[str, Path], texts: list[str],
                         attempts: dict[str, tuple[Attempt, Attempt]], failures: list[str],
                         seconds: dict[str, float], chosen: str, searched: set[str]) -> dict:
    """The manifest's account of the int8 graph: how it was made, from what, and why this one."""
    best = attempts[chosen][1]
    cost = seconds[chosen] / seconds[f"{chosen} all int8"] - 1.0 if chosen in searched else None
    return {
        "method": "onnxruntime dynamic quantization",
        "weights": f"int8 symmetric, {'per output channel' if settings.per_channel else 'per tensor'}",
        "activations": "uint8, per tensor, computed at run time",
        "word_embeddings": ("int8 symmetric, one scale per row" if _embeddings_int8(folder / QUANTIZED.file)
                            else "fp32"),
        "op_types": OP_TYPES,
        "source_graph": sources[chosen].name,
        "target": settings.target.as_data(),
        "calibration": settings.calibration_record(),
        "kept_fp32": best.kept_fp32,
        "kept_fp32_compute_share": round(best.fp32_share, 4),
        "speed_cost_of_kept_fp32": None if cost is None else round(cost, 4),
        "candidates": {
            name: {
                "latency_ms": round(seconds[name] * 1000, 3) if name in seconds else None,
                "kept_fp32": len(best_of.kept_fp32),
                "fidelity": best_of.fidelity,
                **({"gate": best_of.gate} if best_of.gate else {}),
            }
            for name, (_, best_of) in attempts.items()
        },
        "candidates_failed": failures,
        "latency_shape": list(TIMING_SHAPE),
        "chosen": chosen,
        "why": _why(chosen, list(attempts), seconds, failures),
    }


def _all_int8(folder: Path, sources: dict[str, Path], work: Path, settings: QuantizeSettings,
              started: dict[str, Int8Child], spec: TaskSpec, config, texts: list[str]):
    """Every source's all-int8 graph, the calibration batches, fp32's outputs on them, and the
    fidelity and models of the graphs already measured.

    The quantizer is single-threaded Python: one graph is quantized here while a thread runs fp32 on
    the texts (onnxruntime releases the GIL) and measures the graphs written by child processes
    (those `export` started, and all others but one).
    """
    children = {name: child for name, child in started.items()
                if name in sources and child.per_channel == settings.per_channel}
    early = dict(children)
    waiting = [name for name in sources if name not in children]
    for name in waiting[:-1]:
        children[name] = Int8Child(sources[name], work / f"{name}-int8.onnx", settings.per_channel)
    try:
        firsts = {}
        with ThreadPoolExecutor(max_workers=1) as thread:
            background = thread.submit(_reference_and_early, folder, spec, config, texts, early)
            if waiting:
                here = waiting[-1]
                firsts[here] = write_int8(sources[here], work / f"{here}-int8.onnx", settings.per_channel, [])
            batches, expected, figures, models = background.result()
        firsts.update({name: child.result() for name, child in children.items()})
    except BaseException:
        for child in children.values():
            child.cancel()
        raise
    return {name: firsts[name] for name in sources}, batches, expected, figures, models


def _reference_and_early(folder: Path, spec: TaskSpec, config, texts: list[str], early: dict[str, Int8Child]):
    """The calibration batches, model.onnx's outputs on them, and for the `early` int8 graphs their
    fidelity and their models."""
    batches = calibration_batches(folder, spec, config, texts, per_text=True)
    expected = reference_outputs(OnnxModel(folder / FP32.file).run, batches)
    models = {name: OnnxModel(child.result()) for name, child in early.items()}
    figures = {name: fidelity(expected, model.run, spec, batches) for name, model in models.items()}
    return batches, expected, figures, models


def _seconds(models: dict[str, OnnxModel], spec: TaskSpec, config) -> dict[str, float]:
    """Median seconds per run of each graph on TIMING_SHAPE synthetic inputs, taking turns (timing.in_turns)."""
    batch, length = TIMING_SHAPE
    feeds = synthetic_feeds(spec, config.vocab_size, batch, min(length, config.max_position_embeddings))
    return in_turns({name: partial(model.run, feeds) for name, model in models.items()}, TIMING_ROUNDS)


def _embeddings_int8(path: Path) -> bool:
    """Whether the int8 graph at `path` stores its word-embedding table as int8 (embedding_int8.py)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return any(init.name.endswith("_row_scale") for init in model.graph.initializer)


def _source_graphs(folder: Path, graph: str) -> dict[str, Path]:
    wanted = list(GRAPHS) if graph == "auto" else [graph]
    sources = {name: folder / GRAPHS[name] for name in wanted if (folder / GRAPHS[name]).is_file()}
    if graph == "fused" and not sources:
        raise ArtifactError(f"{folder} has no fused graph to quantize: run distilbert-onnx optimize first")
    if not sources:
        raise ArtifactError(f"{folder} has no model.onnx to quantize")
    return sources


def _why(chosen: str, candidates: list[str], seconds: dict[str, float], failures: list[str]) -> str:
    others = [name for name in candidates if name != chosen]
    if not others:
        return "the only graph quantized" + ("; the other could not meet the target" if failures else "")
    other = others[0]
    return (
        f"faster: {seconds[chosen] * 1000:.1f} ms against {seconds[other] * 1000:.1f} ms for the {other} graph "
        f"at batch {TIMING_SHAPE[0]} x {TIMING_SHAPE[1]} tokens, both meeting the target"
    )
