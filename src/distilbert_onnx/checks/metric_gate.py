"""The metric gate: an int8 graph kept only if the task's metric on the user's labelled data stays
within a drop of fp32's (`--eval-data FILE --max-metric-drop POINTS`).

fp32 (model.onnx) is scored once on the rows (checks/evaluation.py: the task's headline metric in
points, e.g. accuracy, entity F1, SQuAD F1); each candidate int8 graph the accuracy search confirms
is scored the same way, through the runtime's pipeline for the task, so its figure is what `load()`
users get. The fidelity target stays as a floor: a graph must meet both.

A graph meets the gate when the upper end of the 95% interval of its drop (the paired bootstrap over
the rows, metrics.paired_drop) is within the largest drop allowed, not merely the drop seen on these
rows: on a few hundred rows a graph that changes a handful of predictions can gain a point here and
lose one on the next rows. So a gate of a fraction of a point needs many rows, or a graph that
changes almost no prediction on them; the shortfall says which bound was missed.

What a variant's manifest record keeps (`gate`): the metric, the candidate's and fp32's values, the
drop with its interval and the largest drop allowed, the share of rows predicted otherwise, the data
file's name, sha256 and row count, and whether it meets the gate. `variant="auto"` never picks a
variant whose gate is missed.
"""

from __future__ import annotations

from pathlib import Path

from ..manifest import gate_interval
from ..variants import FP32
from .user_data import DataFile


class MetricGate:
    """fp32's score on the labelled rows, and the judgement of candidates against it."""

    def __init__(self, folder: Path, data: DataFile, max_drop: float):
        from ..runtime.pipelines import pipeline_on
        from ..runtime.session import OnnxModel
        from .evaluation import evaluate_pipeline, load_labelled

        self.folder, self.max_drop = Path(folder), max_drop
        fp32 = pipeline_on(OnnxModel(self.folder / FP32.file), self.folder, FP32.name)
        self.labelled = load_labelled(data.path, fp32.context.spec, dict(data.columns), data.label_column or "label",
                                      data.rows, label_required=data.label_column is not None)
        self.reference = evaluate_pipeline(fp32, self.labelled)

    def judge(self, model, variant: str) -> dict:
        """The gate record of the candidate graph `model` (a runtime model: OnnxModel, OpenVinoModel)
        that would become `variant`."""
        from ..runtime.pipelines import pipeline_on
        from .evaluation import evaluate_pipeline
        from .metrics import paired_drop

        pipe = pipeline_on(model, self.folder, variant)
        result = evaluate_pipeline(pipe, self.labelled, reference=self.reference)
        drop = paired_drop(self.reference.score, result.score)
        return {
            "metric": result.score.metric,
            "value": round(result.score.value, 4),
            "fp32_value": round(self.reference.score.value, 4),
            "drop": round(drop.value, 4),
            "drop_interval": [round(drop.low, 4), round(drop.high, 4)],
            "max_drop": self.max_drop,
            "changed_vs_fp32": None if result.changed is None else round(result.changed, 4),
            "data": self.labelled.path.name,
            "data_sha256": self.labelled.sha256,
            "rows": self.labelled.rows,
            "meets": drop.high <= self.max_drop,
        }


def open_gate(folder: Path, data: DataFile | None, max_drop: float | None) -> MetricGate | None:
    """The gate the settings ask for, fp32 already scored; None without --eval-data."""
    return None if data is None else MetricGate(folder, data, max_drop)


def gate_shortfall(record: dict | None) -> str:
    """How a gate record misses, in words ("" when it meets or there is no gate)."""
    if not record or record["meets"]:
        return ""
    high = gate_interval(record)[1]
    return (f"{record['metric']} drop {record['drop']:.2f} points, up to {high:.2f} at 95% confidence > {record['max_drop']:g} "
            f"(by {high - record['max_drop']:.2f}; {record['value']:.2f} against fp32's {record['fp32_value']:.2f} "
            f"on {record['rows']} rows of {record['data']})")


def gate_summary(record: dict) -> str:
    """A gate record in one line (info, quantize, validate)."""
    verdict = "meets" if record["meets"] else "MISSES"
    low, high = gate_interval(record)
    return (f"metric gate: {record['metric']} {record['value']:.2f} (fp32 {record['fp32_value']:.2f}, drop {record['drop']:.2f}, "
            f"95% interval {low:.2f} to {high:.2f}; {verdict} max drop {record['max_drop']:g}) on {record['rows']} rows of "
            f"{record['data']} (sha256 {record['data_sha256'][:12]})")
