"""What `quantize` (and the OpenVINO int8 build) is asked to do: weight granularity, the fidelity
target, calibration texts, which fp32 graph to start from, and whether a missed target is an error."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from .. import targets
from .user_data import DataFile
from ..errors import OptionError, QuantizationError
from ..manifest import Target, describe_target, meets, require_manifest, shortfalls, update_manifest
from ..options import CALIBRATION_ROWS, GRAPH, MAX_METRIC_DROP
from ..samples import sample_texts
from ..tasks import TaskSpec

if TYPE_CHECKING:
    from .metric_gate import MetricGate

BUILT_IN_SAMPLE = "built-in sample of varied English"
# Both int8 searches (onnx_build/search.py, openvino_build/int8.py): keeping more than this share of
# the compute in fp32 is not worth int8; node sensitivities are measured on this many batches.
MAX_FP32_SHARE = 0.5
SENSITIVITY_BATCHES = 4
RELAX_HINT = "Loosen the target (--max-prob-diff, or --min-cosine / --min-worst-cosine for embeddings), or leave int8 out"
T = TypeVar("T")


@dataclass(frozen=True)
class QuantizeSettings:
    """What `quantize` does: weight granularity, the fidelity target, calibration texts, source graph."""

    per_channel: bool = True
    # The target's bounds as the user gave them (targets.BOUNDS names; None keeps the head's default).
    given: tuple[tuple[str, float | None], ...] = ()
    has_target: bool = True
    # The target of one head, set by for_task; None until then.
    target: Target | None = None
    calibration_texts: tuple[str, ...] | None = None
    calibration_source: str = BUILT_IN_SAMPLE
    # --calibration-data: the user's table, read into the task's records by for_task.
    calibration_file: DataFile | None = None
    calibration_records: tuple[dict, ...] | None = None
    calibration_details: dict | None = None
    # --eval-data and --max-metric-drop: the metric gate (metric_gate.py).
    gate_file: DataFile | None = None
    max_metric_drop: float | None = None
    graph: str = GRAPH.default
    # An int8 variant that cannot meet its target: an error (True), or left out with a line saying by
    # how much it missed while everything else is written (False, what `export` does by default).
    require_int8: bool = True

    @classmethod
    def from_options(
        cls,
        calibration_texts: str | Path | list[str] | None = None,
        *,
        per_channel: bool | None = None,
        graph: str | None = None,
        target: bool = True,
        require_int8: bool = True,
        calibration_data: str | Path | None = None,
        calibration_rows: int | None = None,
        columns: dict[str, str | None] | None = None,
        eval_data: str | Path | None = None,
        label_column: str | None = None,
        eval_rows: int | None = None,
        max_metric_drop: float | None = None,
        **bounds: float | None,
    ) -> QuantizeSettings:
        """Settings from user options; None keeps a default, `target=False` drops the fidelity target.
        `bounds`: min_cosine, min_worst_cosine, max_prob_diff, min_agreement (checked here; which
        apply depends on the head, see targets.py). `calibration_data` (a table, read with `columns`
        as the task's records, `calibration_rows` of them) replaces the calibration texts;
        `eval_data` (labelled, `label_column`, its first `eval_rows` rows) with `max_metric_drop`
        gates each int8 variant on the task's metric."""
        if calibration_data is not None and calibration_texts is not None:
            raise OptionError("give --calibration-texts or --calibration-data, not both")
        if (eval_data is None) != (max_metric_drop is None):
            raise OptionError("the metric gate needs both --eval-data FILE and --max-metric-drop POINTS")
        unknown = set(bounds) - set(targets.BOUNDS)
        if unknown:
            raise TypeError(f"unknown fidelity bound(s) {', '.join(sorted(unknown))}: choose from {', '.join(targets.BOUNDS)}")
        checked = tuple((name, targets.BOUNDS[name].option.value(value)) for name, value in bounds.items()
                        if value is not None)
        settings = cls(given=checked, has_target=target, graph=GRAPH.value(graph), require_int8=require_int8)
        if calibration_texts is not None:
            texts, source = _read_texts(calibration_texts)
            settings = replace(settings, calibration_texts=tuple(texts), calibration_source=source)
        if per_channel is not None:
            settings = replace(settings, per_channel=per_channel)
        if calibration_data is not None:
            rows = CALIBRATION_ROWS.value(calibration_rows)
            settings = replace(settings, calibration_file=DataFile.of(calibration_data, columns, rows=rows))
        if eval_data is not None:
            settings = replace(settings, gate_file=DataFile.of(eval_data, columns, label_column, eval_rows),
                               max_metric_drop=MAX_METRIC_DROP.value(max_metric_drop))
        return settings

    def for_task(self, spec: TaskSpec) -> QuantizeSettings:
        """These settings with the target of `spec`'s head resolved (an OptionError for a bound that
        does not apply to it), and the rows of --calibration-data read."""
        target = Target(targets.target_for(spec, dict(self.given)) if self.has_target else {})
        settings = replace(self, target=target)
        if self.calibration_file is not None and self.calibration_records is None:
            records, details = self.calibration_file.records(spec)
            settings = replace(settings, calibration_records=tuple(records), calibration_details=details,
                               calibration_source=self.calibration_file.path.name)
        return settings

    def texts(self) -> list:
        """What fidelity is measured (and NNCF calibrated) on: the task's records from
        --calibration-data, else texts (--calibration-texts, or the built-in sample)."""
        if self.calibration_records is not None:
            return list(self.calibration_records)
        if self.calibration_texts is not None:
            return list(self.calibration_texts)
        return sample_texts()

    def calibration_record(self) -> dict:
        """The manifest's account of the calibration data."""
        return {"texts": len(self.texts()), "source": self.calibration_source, **(self.calibration_details or {})}

    def meets(self, figures: dict) -> bool:
        return meets(figures, self._target())

    def shortfalls(self, figures: dict) -> str:
        """How `figures` miss the target, in words."""
        return "; ".join(shortfalls(figures, self._target()))

    def describe_target(self) -> str:
        return describe_target(self._target())

    def judged(self, made, gate: MetricGate | None):
        """`made` (an int8 graph of either search: onnx_build's Attempt, openvino_build's Int8Ir) with
        its metric gate record, scored only where its fidelity meets the target (the floor)."""
        if gate is not None and self.meets(made.fidelity):
            made.gate = gate.judge(made.as_model(), made.variant.name)
        return made

    def accepted(self, made, gate: MetricGate | None) -> bool:
        """Whether an int8 graph meets the fidelity target and, with a gate, the metric gate."""
        return self.meets(made.fidelity) and (gate is None or bool(made.gate and made.gate["meets"]))

    def describe_goal(self, gate: MetricGate | None) -> str:
        goal = self.describe_target()
        return goal if gate is None else f"{goal}, and a drop of the task's metric <= {gate.max_drop:g} points"

    def _target(self) -> Target:
        if self.target is None:
            raise RuntimeError("the fidelity target is per head: call for_task(spec) first")
        return self.target


def recorded_settings(spec: TaskSpec, recorded: Target, calibration_texts=None) -> tuple[QuantizeSettings, str]:
    """Settings that judge a variant by the target its manifest records, and a note. A target
    recorded before the per-head measures (cosine bounds for a head now compared by probabilities)
    is replaced by the head's default target, and the note says so."""
    settings = QuantizeSettings.from_options(calibration_texts)
    if set(recorded.binding) <= set(targets.MEASURES[spec.compared_as][0]):
        return replace(settings, target=Target(recorded.binding)), ""
    return replace(settings, target=Target(targets.target_for(spec))), (
        f" (its recorded target, {describe_target(recorded)}, is in terms no longer measured for {spec.name}: "
        "judged against the default target)")


def int8_or_left_out(build: Callable[[], T], variant: str, settings: QuantizeSettings, folder: Path,
                     echo: Callable[[str], None] | None) -> T | None:
    """What `build()` makes of an int8 variant; when it cannot meet its target, the QuantizationError
    where int8 is required, else None: the variant is left out, one line says so and by how much it
    missed, and the manifest's `left_out` records why (a folder that has the variant from before
    keeps it, and the line says that instead)."""
    try:
        return build()
    except QuantizationError as exc:
        if settings.require_int8:
            raise
        reason = str(exc)
    manifest = require_manifest(folder)
    if variant in manifest.records:
        line = f"- {variant} not rebuilt (the folder keeps its earlier one): {reason}"
    else:
        line = f"- {variant} left out (--require-int8 makes this an error): {reason}"
        update_manifest(folder, left_out={**manifest.left_out, variant: reason})
    if echo:
        echo(line)
    return None


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
