"""How far a variant's outputs are from the fp32 graph's on real text.

Calibration texts (a user's file or data set, or the package's built-in sample of varied English)
become the task's records (TaskSpec.sample_record: single texts, question/context pairs, a prompt with
CHOICES choices), tokenized with the folder's tokenizer. Both graphs run on the same batches and the
figures compare them as the task's spec says (`compared_as`; targets.py says which bound what):

  rows              compared items: texts, choice sets, real tokens, questions
  max_abs_diff      largest difference of any output at a real (unpadded) position
  probabilities: the scores the pipeline would give (softmax over classes, choices, labels or the
  vocabulary; sigmoid per label for a multi-label problem_type)
    max_prob_diff   largest change of any probability of any item
    mean_prob_diff  mean over items of each item's largest change
    top1_agreement  share of items whose best class is the same (multi-label: the same set above 0.5)
  spans: the best answer span (end >= start, at most MAX_ANSWER_TOKENS long) and its probability
    max/mean_prob_diff  change of the probability of fp32's best span (start x end softmax)
    span_agreement  share of equal best spans
  mean-pooled: sentence vectors (hidden states averaged over real tokens)
    mean/min_cosine cosine similarity of the vectors

Dynamic int8 quantizes activations with a range taken from each call's whole input, so its error
depends on what shares the call: a text alone (how transformers.js and most apps call a model) and
the same text among fifteen others in a padded batch give different outputs. Its graphs are measured
both ways (`per_text=True`) and each figure is the worse of the two, so that the recorded fidelity
holds however the graph is called.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import DistilBertConfig
from ..runtime.batching import pad, plan_batches
from ..runtime.pipelines.base import softmax
from ..runtime.pipelines.text_classification import default_function
from ..runtime.tokenizer import TextTokenizer
from ..tasks import TaskSpec
from .probes import Runner

CALIBRATION_MAX_LENGTH = 256
CALIBRATION_BATCH_SIZE = 16
MAX_ANSWER_TOKENS = 15


@dataclass(frozen=True)
class Batch:
    """Inputs of the task, and how its logits become the scores compared (scores_function)."""

    feeds: dict[str, np.ndarray]
    scores: str = "softmax"
    calls: str = "batched"  # how the batch calls the graph: "batched" or "per-text"

    @property
    def mask(self) -> np.ndarray:
        """The attention mask as one row per sequence."""
        mask = self.feeds["attention_mask"]
        return mask.reshape(-1, mask.shape[-1]).astype(bool)


def calibration_batches(
    folder: str | Path, spec: TaskSpec, config: DistilBertConfig, texts: list[str] | list[dict],
    per_text: bool = False,
) -> list[Batch]:
    """The task's inputs made from `texts` (or the task's records, from the user's data), in
    length-bucketed, padded batches; with `per_text`, followed by every record alone in a call."""
    tokenizer = TextTokenizer(folder, config.max_position_embeddings)
    limit = min(CALIBRATION_MAX_LENGTH, tokenizer.model_max_length)
    records = [item if isinstance(item, dict) else spec.sample_record(texts, index) for index, item in enumerate(texts)]
    per_record = [spec.model_texts(record) for record in records]
    encodings = iter(tokenizer.encode([text for item in per_record for text in item], max_length=limit,
                                      strategy=spec.pair_truncation))
    rows = [[next(encodings).ids for _ in item] for item in per_record]
    groups = [("batched", group) for group in plan_batches([max(len(r) for r in item) for item in rows],
                                                             CALIBRATION_BATCH_SIZE)]
    groups += [("per-text", [index]) for index in range(len(rows))] if per_text else []
    batches = []
    for calls, group in groups:
        sequences = [sequence for index in group for sequence in rows[index]]
        input_ids, attention_mask = pad(sequences, tokenizer.pad_token_id)
        shape = spec.input_shape(len(group), input_ids.shape[-1], choices=len(rows[group[0]]))
        batches.append(Batch({"input_ids": input_ids.reshape(shape), "attention_mask": attention_mask.reshape(shape)},
                             scores_function(config), calls))
    return batches


def reference_outputs(reference: Runner, batches: list[Batch]) -> list[dict[str, np.ndarray]]:
    """Run the reference once; every candidate is then compared with these outputs."""
    return [reference(batch.feeds) for batch in batches]


def fidelity(
    expected: list[dict[str, np.ndarray]], candidate: Runner, spec: TaskSpec, batches: list[Batch]
) -> dict:
    """The figures of the module docstring for `candidate` against the `expected` outputs: with
    batches that call the graph both ways, the worse figure of the two ways."""
    compare = _MEASURES[spec.compared_as]
    per_calls: dict[str, dict] = {}
    for want, batch in zip(expected, batches, strict=True):
        got = candidate(batch.feeds)
        mask = batch.mask
        measured = per_calls.setdefault(batch.calls, {"max_abs_diff": 0.0, "parts": []})
        for name in spec.output_names:
            per_token = name in spec.per_token_outputs()
            difference = np.abs(_real(want[name], mask, per_token) - _real(got[name], mask, per_token))
            measured["max_abs_diff"] = max(measured["max_abs_diff"], float(difference.max()))
        measured["parts"].append(compare(spec, want, got, mask, batch.scores))
    return _worst([_figures(**measured) for measured in per_calls.values()])


def _figures(max_abs_diff: float, parts: list[dict[str, np.ndarray]]) -> dict:
    """The figures over the per-item values of one way of calling the graph."""
    joined = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    figures = {"rows": int(next(iter(joined.values())).size), "max_abs_diff": max_abs_diff}
    if "cosine" in joined:
        figures.update(mean_cosine=float(joined["cosine"].mean()), min_cosine=float(joined["cosine"].min()))
    if "prob_diff" in joined:
        figures.update(max_prob_diff=float(joined["prob_diff"].max()), mean_prob_diff=float(joined["prob_diff"].mean()))
    for key in ("top1_agreement", "span_agreement"):
        if key in joined:
            figures[key] = float(joined[key].mean())
    return figures


def _worst(measured: list[dict]) -> dict:
    """Each figure at its worst over the ways the graph was called: differences at their largest,
    similarities and agreements at their smallest (every way covers the same rows)."""
    worst = dict(measured[0])
    for figures in measured[1:]:
        for key, value in figures.items():
            larger_is_worse = key.endswith("_diff")
            worst[key] = max(worst[key], value) if larger_is_worse or key == "rows" else min(worst[key], value)
    return worst


def scores_function(config: DistilBertConfig) -> str:
    """How the head's logits become the scores compared: as the text-classification pipeline turns
    them by default (sigmoid for multi-label, none for regression), else softmax."""
    return default_function(config)


def _real(values: np.ndarray, mask: np.ndarray, per_token: bool) -> np.ndarray:
    """The values at real positions: per-token outputs lose their padded positions."""
    rows = values.reshape(mask.shape[0], -1).astype(np.float64)
    if not per_token:
        return rows
    return rows.reshape(mask.shape[0], mask.shape[1], -1)[mask]


def _probabilities(spec: TaskSpec, want: dict, got: dict, mask: np.ndarray, scores: str) -> dict[str, np.ndarray]:
    """Per item (text, choice set, real token): the largest probability change and top-1 agreement."""
    items = [outputs["logits"][mask] if spec.per_token_outputs() else outputs["logits"] for outputs in (want, got)]
    p_want, p_got = (_scores(logits.astype(np.float32), scores) for logits in items)
    if scores == "sigmoid":
        agree = ((p_want > 0.5) == (p_got > 0.5)).all(axis=-1)
    else:
        agree = p_want.argmax(axis=-1) == p_got.argmax(axis=-1)
    return {"prob_diff": np.abs(p_want - p_got).max(axis=-1).astype(np.float64), "top1_agreement": agree}


def _scores(logits: np.ndarray, function: str) -> np.ndarray:
    if function == "sigmoid":
        return 1.0 / (1.0 + np.exp(-logits))
    return logits if function == "none" else softmax(logits)


def _spans(spec: TaskSpec, want: dict, got: dict, mask: np.ndarray, scores: str) -> dict[str, np.ndarray]:
    """Per question: equal best spans, and the change of the probability of fp32's best span."""
    best = _best_spans(want, mask)
    rows = np.arange(len(best))

    def span_probability(outputs: dict) -> np.ndarray:
        start, end = (softmax(np.where(mask, outputs[name], -np.inf).astype(np.float64))
                      for name in ("start_logits", "end_logits"))
        return start[rows, best[:, 0]] * end[rows, best[:, 1]]

    return {"prob_diff": np.abs(span_probability(want) - span_probability(got)),
            "span_agreement": (best == _best_spans(got, mask)).all(axis=-1)}


def _mean_pooled(spec: TaskSpec, want: dict, got: dict, mask: np.ndarray, scores: str) -> dict[str, np.ndarray]:
    """Per text: the cosine of the sentence vectors (hidden states averaged over its real tokens)."""
    weights = mask[..., None].astype(np.float64)

    def pooled(outputs: dict) -> np.ndarray:
        hidden = outputs[spec.output_names[0]].astype(np.float64)
        return (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)

    a, b = pooled(want), pooled(got)
    norms = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return {"cosine": (a * b).sum(axis=-1) / np.maximum(norms, 1e-12)}


# TaskSpec.compared_as -> the per-item figures of one batch.
_MEASURES = {"probabilities": _probabilities, "spans": _spans, "mean-pooled": _mean_pooled}


def _best_spans(outputs: dict[str, np.ndarray], mask: np.ndarray) -> np.ndarray:
    """(start, end) of the best span per row: end >= start, at most MAX_ANSWER_TOKENS long."""
    start, end = (np.where(mask, outputs[name], -np.inf) for name in ("start_logits", "end_logits"))
    length = mask.shape[1]
    band = np.triu(np.ones((length, length), dtype=bool)) & ~np.triu(np.ones((length, length), dtype=bool), MAX_ANSWER_TOKENS)
    scores = np.where(band, start[:, :, None] + end[:, None, :], -np.inf)
    best = scores.reshape(len(scores), -1).argmax(axis=1)
    return np.stack(np.unravel_index(best, (length, length)), axis=1)
