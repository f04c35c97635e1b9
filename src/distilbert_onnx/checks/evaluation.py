"""A model's task metric on the user's labelled data: one pipeline (`evaluate_pipeline`, what a
build's metric gate calls) or every variant of a folder beside PyTorch (`evaluate_folder`, the
`evaluate` command).

Each variant runs through the runtime's pipelines, so its predictions are exactly what `load()`
users get; PyTorch runs through the same pipeline code (pipeline_on) with the checkpoint's model in
place of a graph. fp32 always runs: it is the reference each row's prediction is compared with.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import OptionError
from ..variants import OPENVINO, VARIANTS, present
from .labelled import DEFAULT_LABEL_COLUMN, LABELS_OPTIONAL, LabelledRows, load_labelled
from .metrics import Estimate, TaskScore, metric_drop, paired_drop
from .scoring import FAMILIES, Outcome, gold_labels, predict

__all__ = ["Evaluation", "LabelledRows", "VariantResult", "check_labels", "evaluate_folder", "evaluate_pipeline",
           "load_labelled", "metric_drop"]

REFERENCE = "fp32"
TORCH_ROW = "torch-fp32"


@dataclass(frozen=True)
class VariantResult:
    """One variant's score on the rows, its predictions, and how fast it made them here."""

    variant: str
    score: TaskScore
    predictions: list
    vectors: np.ndarray | None
    changed: float | None  # percent of rows whose prediction differs from the reference's
    rows_per_second: float

    def as_dict(self) -> dict:
        return {"variant": self.variant, **self.score.as_dict(), "changed_vs_fp32": self.changed,
                "rows_per_second": self.rows_per_second}


def check_labels(labelled: LabelledRows, context) -> list:
    """The gold labels as the model's ids / tags / token ids; a DataError naming the first bad row."""
    return gold_labels(FAMILIES[context.spec.metric], labelled, context)


def evaluate_pipeline(pipe, labelled: LabelledRows, reference: VariantResult | None = None,
                      batch_size: int = 32) -> VariantResult:
    """`pipe`'s score on `labelled`; with a `reference` result, the share of rows predicted otherwise
    (and, for sentence vectors without labels, agreement with the reference's vectors). Rows per
    second count the whole pipeline (tokenizing, the model, decoding) after a one-row warm-up."""
    family = FAMILIES[pipe.context.spec.metric]
    gold = check_labels(labelled, pipe.context)
    predict(family, pipe, labelled.head(1), gold[:1], batch_size)  # warm-up, untimed
    started = time.perf_counter()
    outcome = predict(family, pipe, labelled, gold, batch_size)
    seconds = time.perf_counter() - started
    previous = None if reference is None else Outcome(reference.predictions, None, reference.vectors)
    score = family.score(gold, outcome, previous, pipe.context, labelled)
    changed = None
    if reference is not None:
        changed = 100.0 * float(np.mean([mine != theirs for mine, theirs in zip(outcome.predictions, reference.predictions)]))
    return VariantResult(pipe.variant, score, outcome.predictions, outcome.vectors, changed,
                         labelled.rows / max(seconds, 1e-9))


@dataclass
class Evaluation:
    """Every variant's result on one labelled file: torch-fp32 (when asked), fp32, then the others."""

    task: str
    data: Path
    rows: int
    sha256: str
    results: list[VariantResult]
    skipped: dict[str, str] = field(default_factory=dict)  # variant -> why it did not run

    @property
    def metric(self) -> str:
        return self.results[0].score.metric

    def drops(self) -> dict[str, Estimate]:
        """Per variant other than fp32: its headline metric's drop from fp32's, with the paired interval."""
        reference = next(result for result in self.results if result.variant == REFERENCE)
        return {result.variant: paired_drop(reference.score, result.score)
                for result in self.results if result is not reference}

    def as_dict(self) -> dict:
        drops = self.drops()
        return {"task": self.task, "data": str(self.data), "rows": self.rows, "sha256": self.sha256,
                "metric": self.metric,
                "results": [{**result.as_dict(), **_drop_fields(drops.get(result.variant))} for result in self.results],
                "skipped": self.skipped}


def _drop_fields(drop: Estimate | None) -> dict:
    """A result's drop from fp32 in the JSON: 0 with no interval for fp32 itself."""
    if drop is None:
        return {"drop_vs_fp32": 0.0, "drop_vs_fp32_interval": None}
    return {"drop_vs_fp32": drop.value, "drop_vs_fp32_interval": [drop.low, drop.high]}


def evaluate_folder(folder, data, *, columns: dict | None = None, label_column: str | None = DEFAULT_LABEL_COLUMN,
                    label_required: bool = True, limit: int | None = None, variants: list[str] | None = None,
                    pytorch: Callable | None = None, device: str = "cpu", batch_size: int = 32,
                    threads: int | None = None, progress: Callable[[str], None] | None = None) -> Evaluation:
    """Score FOLDER's variants (all it has that run on `device`, or `variants`) on the labelled file
    `data`, with the PyTorch checkpoint as an extra row when the caller gives `pytorch(folder,
    threads)`, its pipeline (exporting.torch_pipeline: torch lives above the checks; load_labelled
    says what the column arguments mean)."""
    from ..runtime.pipelines import load_pipeline as load

    echo = progress or (lambda message: None)
    folder = Path(folder)
    fp32 = load(folder, device=device, variant=REFERENCE, threads=threads)
    labelled = load_labelled(data, fp32.context.spec, columns, label_column, limit, label_required)
    check_labels(labelled, fp32.context)
    if fp32.context.spec.metric in LABELS_OPTIONAL and labelled.label_column is None:
        echo(f"{labelled.path.name} has no labels: sentence vectors are scored by their agreement with fp32's")
    names, skipped = _variants_to_run(folder, device, variants)
    for name, reason in skipped.items():
        echo(f"  {name}: not run ({reason})")
    echo(f"evaluating {fp32.task} on {labelled.rows:,} rows of {labelled.path.name}: "
         f"{', '.join(([TORCH_ROW] if pytorch else []) + names)}")
    reference = evaluate_pipeline(fp32, labelled, batch_size=batch_size)
    results = {REFERENCE: reference}
    if pytorch is not None:
        results[TORCH_ROW] = evaluate_pipeline(pytorch(folder, threads), labelled, reference, batch_size)
        echo(f"  {TORCH_ROW}: {results[TORCH_ROW].score.metric} {results[TORCH_ROW].score.value:.2f}")
    for name in names:
        if name != REFERENCE:
            pipe = load(folder, device=device, variant=name, threads=threads)
            results[name] = evaluate_pipeline(pipe, labelled, reference, batch_size)
        echo(f"  {name}: {results[name].score.metric} {results[name].score.value:.2f}")
    order = ([TORCH_ROW] if pytorch else []) + [REFERENCE] + [name for name in names if name != REFERENCE]
    ordered = [results[name] for name in order]
    return Evaluation(fp32.task, labelled.path, labelled.rows, labelled.sha256, ordered, skipped)


def _variants_to_run(folder: Path, device: str, wanted: list[str] | None) -> tuple[list[str], dict[str, str]]:
    """The variants to evaluate, and those present but left out with the reason."""
    openvino = importlib.util.find_spec("openvino") is not None
    skipped = {}
    if wanted:
        unknown = [name for name in wanted if name not in VARIANTS]
        if unknown:
            raise OptionError(f"unknown variant {unknown[0]!r}: choose from {', '.join(VARIANTS)}")
        return list(dict.fromkeys(wanted)), skipped
    names = []
    for name, variant in VARIANTS.items():
        if not present(folder, variant):
            continue
        if device not in variant.devices:
            skipped[name] = f"runs on {', '.join(variant.devices)}, not {device}"
        elif variant.backend == OPENVINO and not openvino:
            skipped[name] = "needs openvino: pip install 'distilbert-onnx[openvino]'"
        else:
            names.append(name)
    return names, skipped
