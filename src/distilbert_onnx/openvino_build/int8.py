"""Static int8 OpenVINO IR from NNCF post-training quantization, made accuracy-aware.

NNCF quantizes the fp32 IR with its transformer settings: model_type TRANSFORMER, the MIXED preset
(weights int8 symmetric per output channel, activations int8 asymmetric per tensor), SmoothQuant at
NNCF's transformer default, fast bias correction; these gave the best fidelity on all-MiniLM-L6-v2
(bench/openvino_fidelity.py, bench/README.md). Activation ranges come from the calibration texts
and from runs of JOINED of them joined into one text, so that they cover long inputs even when the
texts are short. OpenVINO fuses each attention into one ScaledDotProductAttention op, whose query
and key inputs NNCF quantizes too. Embedding lookups (Gather) stay fp32, as in the onnxruntime int8
graph: NNCF would store their tables in int8, which saves file size, not time, and costs fidelity.
The int8 IR is measured with its other float ops in fp32 (OpenVinoModel's `f32`), as the runtime runs it.

Accuracy-aware like the onnxruntime int8 path (search.py), with the same figures and targets: when
the all-int8 IR misses the target, ops (MatMuls, attentions) are kept in higher precision through
NNCF's ignored scope, the most sensitive per unit of compute first. Sensitivity is measured on the
all-int8 IR itself: the fidelity gained (targets.loss) when one op alone reads its inputs unquantized (activations
are where static int8 loses most). The fewest ops that meet the target are then found by doubling
then bisecting, each count a real NNCF run that ignores them; with a metric gate (metric_gate.py)
each must also keep the task's metric within the drop allowed. More than MAX_FP32_SHARE of the
compute kept in fp32 is not worth int8: a QuantizationError then reports the best reached, and
nothing is written.
"""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import targets
from ..checks.fidelity import Batch, fidelity
from ..checks.metric_gate import MetricGate, gate_shortfall
from ..errors import MissingExtraError, QuantizationError
from ..checks.quantize_settings import MAX_FP32_SHARE, RELAX_HINT, SENSITIVITY_BATCHES, QuantizeSettings
from ..runtime.openvino_model import OpenVinoModel, core
from ..tasks import TaskSpec
from ..variants import OPENVINO_INT8

# What NNCF's ignored scope keeps in fp32: the linear layers, and the attention OpenVINO fuses into one op.
KEEPABLE = ("MatMul", "ScaledDotProductAttention")
ATTENTION_TOKENS = 128
JOINED = 8
RESHAPES = ("Reshape", "Transpose", "Squeeze", "Unsqueeze")
BUILD_HINT = "pip install 'distilbert-onnx[openvino-build]'"
NNCF_SETTINGS = {
    "model_type": "TRANSFORMER",
    "preset": "MIXED",
    "fast_bias_correction": True,
    "smooth_quant": "NNCF's transformer default",
}


@dataclass
class Int8Ir:
    """An int8 IR in memory: the ops NNCF was told to ignore, their compute share, its fidelity."""

    model: object
    kept_fp32: list[str]
    fp32_share: float
    fidelity: dict
    steps: list[dict] = field(default_factory=list)
    gate: dict | None = None  # its metric gate record (metric_gate.py), where the build has a gate
    variant = OPENVINO_INT8  # what it becomes

    def as_model(self) -> OpenVinoModel:
        """The IR as the runtime runs it, its other ops in f32."""
        return OpenVinoModel(self.model, precision="f32", stored=OPENVINO_INT8.precision)


def import_nncf():
    """The nncf module; a MissingExtraError naming the extra when it is not installed."""
    try:
        import nncf
    except ImportError:
        raise MissingExtraError(f"the int8 OpenVINO IR is made with NNCF, which is not installed: {BUILD_HINT}") from None
    return nncf


def nncf_quantize(ir: Path, batches: list[Batch], kept_fp32: list[str]):
    """NNCF's static int8 of the fp32 IR at `ir`, its activation ranges from `batches`, the ops named in
    `kept_fp32` left unquantized."""
    nncf = import_nncf()
    with _quiet(nncf):
        return nncf.quantize(
            core().read_model(str(ir)),
            nncf.Dataset([batch.feeds for batch in batches]),
            model_type=nncf.ModelType.TRANSFORMER,
            preset=nncf.QuantizationPreset.MIXED,
            fast_bias_correction=NNCF_SETTINGS["fast_bias_correction"],
            subset_size=len(batches),
            ignored_scope=nncf.IgnoredScope(names=kept_fp32, types=["Gather"], validate=False),
        )


def int8_meeting_target(
    ir: Path, spec: TaskSpec, settings: QuantizeSettings, batches: list[Batch], expected: list[dict],
    calibration: list[Batch], gate: MetricGate | None = None,
) -> Int8Ir:
    """The int8 IR of the fp32 IR at `ir` that meets the target (and the metric `gate`) with the
    fewest ops kept in fp32: calibrated on `calibration`, measured on `batches` against fp32's
    `expected` outputs."""
    everything = nncf_quantize(ir, calibration, [])
    first = settings.judged(Int8Ir(everything, [], 0.0, _figures(everything, spec, batches, expected)), gate)
    first.steps.append(_step(first))
    if settings.accepted(first, gate):
        return first
    macs = _op_macs(everything)
    total = sum(macs.values()) or 1
    sample = min(SENSITIVITY_BATCHES, len(batches))
    base = targets.loss(first.fidelity if sample == len(batches) else _figures(
        everything, spec, batches[:sample], expected[:sample]), spec)
    gain = {
        name: base - targets.loss(_figures(_inputs_unquantized(everything, [name]), spec, batches[:sample], expected[:sample]), spec)
        for name in macs
    }
    order = sorted(macs, key=lambda name: gain[name] / macs[name], reverse=True)
    shares = np.cumsum([macs[name] for name in order]) / total
    affordable = int(np.searchsorted(shares, MAX_FP32_SHARE, side="right"))

    steps = list(first.steps)

    def attempt(count: int) -> Int8Ir:
        model = nncf_quantize(ir, calibration, order[:count])
        made = settings.judged(Int8Ir(model, order[:count], float(shares[count - 1]), _figures(model, spec, batches, expected), steps),
                               gate)
        steps.append(_step(made))
        return made

    # The fewest ops that meet the target (and the gate), NNCF ignoring them: double the count, then bisect.
    low, best, tried = 0, None, None
    for count in sorted({min(2**i, affordable) for i in range(affordable.bit_length() + 1)} - {0}):
        tried = attempt(count)
        if settings.accepted(tried, gate):
            best = tried
            break
        low = count
    while best is not None and len(best.kept_fp32) - low > 1:
        middle = attempt((low + len(best.kept_fp32)) // 2)
        low, best = (low, middle) if settings.accepted(middle, gate) else (len(middle.kept_fp32), best)
    if best is not None:
        best.steps = steps
        return best
    reached = tried or first
    missed = settings.shortfalls(reached.fidelity) or gate_shortfall(reached.gate)
    raise QuantizationError(
        f"the OpenVINO int8 IR misses the target ({settings.describe_goal(gate)}) even with the {affordable} most "
        f"sensitive ops ({shares[affordable - 1] if affordable else 0:.0%} of the compute, the most allowed) "
        f"kept in fp32: {missed} (all int8: {settings.shortfalls(first.fidelity) or gate_shortfall(first.gate)}). {RELAX_HINT}"
    )


def _step(made: Int8Ir) -> dict:
    """One step of the search as the manifest records it."""
    return {"kept_fp32": len(made.kept_fp32), "fidelity": made.fidelity, **({"gate": made.gate} if made.gate else {})}


def calibration_texts(texts: list[str]) -> list[str]:
    """What NNCF sees: the texts, then runs of JOINED consecutive texts joined into one."""
    return texts + [" ".join(texts[start : start + JOINED]) for start in range(0, len(texts), JOINED)]


def _figures(model, spec: TaskSpec, batches: list[Batch], expected: list[dict]) -> dict:
    return fidelity(expected, OpenVinoModel(model, precision="f32", stored=OPENVINO_INT8.precision).run, spec, batches)


def _quantized_ops(model) -> dict[str, object]:
    """The MatMul and fused attention (ScaledDotProductAttention) ops NNCF quantized an input of, by
    name: what an ignored scope can keep in fp32."""
    return {
        op.get_friendly_name(): op
        for op in model.get_ordered_ops()
        if op.get_type_name() in KEEPABLE and _quantized_inputs(op)
    }


def _quantized_inputs(op) -> list:
    """The input ports fed by a FakeQuantize, directly or through reshapes (attention's query and key)."""
    ports = []
    for port in op.inputs():
        while (producer := port.get_source_output().get_node()).get_type_name() in RESHAPES:
            port = producer.input(0)
        if producer.get_type_name() == "FakeQuantize":
            ports.append(port)
    return ports


def _op_macs(model) -> dict[str, int]:
    """Multiply-accumulates per token of each quantized op: a MatMul's weight size; an attention's
    two products over ATTENTION_TOKENS keys of its width (its cost grows with the text's length)."""
    macs = {}
    for name, op in _quantized_ops(model).items():
        if op.get_type_name() == "MatMul":
            macs[name] = int(np.prod(list(op.get_input_partial_shape(1).to_shape())))
        else:
            query = op.get_input_partial_shape(0)
            width = query[1].get_length() * query[3].get_length() if query.rank.get_length() == 4 else 1
            macs[name] = 2 * ATTENTION_TOKENS * width
    return macs


def _inputs_unquantized(model, names: list[str]):
    """A copy of the int8 IR in which the ops `names` read their inputs before quantization."""
    copy = model.clone()
    ops = _quantized_ops(copy)
    for name in names:
        for port in _quantized_inputs(ops[name]):
            port.replace_source_output(port.get_source_output().get_node().input_value(0))
    copy.validate_nodes_and_infer_types()
    return copy


@contextlib.contextmanager
def _quiet(nncf):
    """NNCF's progress bars and info lines kept off stdout (where the CLI prints its results)."""
    nncf.set_log_level(logging.ERROR)
    with contextlib.redirect_stdout(io.StringIO()):
        yield
