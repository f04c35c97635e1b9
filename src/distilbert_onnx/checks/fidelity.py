"""How far a variant's outputs are from the fp32 graph's on real text.

Calibration texts (a user's file, or the package's built-in sample of varied English) become the
task's records (TaskSpec.sample_record: single texts, question/context pairs, a prompt with CHOICES
choices), tokenized with the folder's tokenizer. Both graphs run on the same batches and the figures
compare them as the task's spec says (`compared_as`, `agreement`):

  max_abs_diff      largest difference of any output at a real (unpadded) position
  mean/min_cosine   cosine similarity of output vectors: mean-pooled sentence vectors, the logits
                    of each text / token / choice set, or the start and end logits side by side
  top1_agreement    share of equal argmax predictions (classification-type heads)
  span_agreement    share of equal best answer spans (question answering)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import DistilBertConfig
from ..runtime.batching import pad, plan_batches
from ..runtime.tokenizer import TextTokenizer
from ..tasks import TaskSpec
from .probes import Runner

CALIBRATION_MAX_LENGTH = 256
CALIBRATION_BATCH_SIZE = 16
MAX_ANSWER_TOKENS = 15


@dataclass(frozen=True)
class Batch:
    feeds: dict[str, np.ndarray]

    @property
    def mask(self) -> np.ndarray:
        """The attention mask as one row per sequence."""
        mask = self.feeds["attention_mask"]
        return mask.reshape(-1, mask.shape[-1]).astype(bool)


def calibration_batches(
    folder: str | Path, spec: TaskSpec, config: DistilBertConfig, texts: list[str]
) -> list[Batch]:
    """The task's inputs made from `texts`, in length-bucketed, padded batches."""
    tokenizer = TextTokenizer(folder, config.max_position_embeddings)
    limit = min(CALIBRATION_MAX_LENGTH, tokenizer.model_max_length)
    per_record = [spec.model_texts(spec.sample_record(texts, index)) for index in range(len(texts))]
    encodings = iter(tokenizer.encode([text for item in per_record for text in item], max_length=limit,
                                      strategy=spec.pair_truncation))
    rows = [[next(encodings).ids for _ in item] for item in per_record]
    batches = []
    for group in plan_batches([max(len(r) for r in item) for item in rows], CALIBRATION_BATCH_SIZE):
        sequences = [sequence for index in group for sequence in rows[index]]
        input_ids, attention_mask = pad(sequences, tokenizer.pad_token_id)
        shape = spec.input_shape(len(group), input_ids.shape[-1], choices=len(rows[group[0]]))
        batches.append(Batch({"input_ids": input_ids.reshape(shape), "attention_mask": attention_mask.reshape(shape)}))
    return batches


def reference_outputs(reference: Runner, batches: list[Batch]) -> list[dict[str, np.ndarray]]:
    """Run the reference once; every candidate is then compared with these outputs."""
    return [reference(batch.feeds) for batch in batches]


def fidelity(
    expected: list[dict[str, np.ndarray]], candidate: Runner, spec: TaskSpec, batches: list[Batch]
) -> dict:
    """The figures of the module docstring for `candidate` against the `expected` outputs."""
    cosines, agreements = [], []
    max_abs_diff = 0.0
    to_vectors = _VECTORS[spec.compared_as]
    for want, batch in zip(expected, batches):
        got = candidate(batch.feeds)
        mask = batch.mask
        for name in spec.output_names:
            per_token = name in spec.per_token_outputs()
            difference = np.abs(_real(want[name], mask, per_token) - _real(got[name], mask, per_token))
            max_abs_diff = max(max_abs_diff, float(difference.max()))
        vectors_want, vectors_got = to_vectors(spec, want, mask), to_vectors(spec, got, mask)
        cosines.append(_cosine(vectors_want, vectors_got))
        if spec.agreement == "top1_agreement":
            agreements.append(vectors_want.argmax(axis=-1) == vectors_got.argmax(axis=-1))
        elif spec.agreement == "span_agreement":
            agreements.append((_best_spans(want, mask) == _best_spans(got, mask)).all(axis=-1))
    cosine = np.concatenate(cosines)
    figures = {
        "rows": int(cosine.size),
        "max_abs_diff": max_abs_diff,
        "mean_cosine": float(cosine.mean()),
        "min_cosine": float(cosine.min()),
    }
    if agreements:
        figures[spec.agreement] = float(np.concatenate(agreements).mean())
    return figures


def _real(values: np.ndarray, mask: np.ndarray, per_token: bool) -> np.ndarray:
    """The values at real positions: per-token outputs lose their padded positions."""
    rows = values.reshape(mask.shape[0], -1).astype(np.float64)
    if not per_token:
        return rows
    return rows.reshape(mask.shape[0], mask.shape[1], -1)[mask]


def _mean_pooled(spec: TaskSpec, outputs: dict[str, np.ndarray], mask: np.ndarray) -> np.ndarray:
    """One sentence vector per text: the hidden states averaged over its real tokens."""
    hidden = outputs[spec.output_names[0]].astype(np.float64)
    weights = mask[..., None].astype(np.float64)
    return (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)


def _spans(spec: TaskSpec, outputs: dict[str, np.ndarray], mask: np.ndarray) -> np.ndarray:
    """One vector per text: every output (start and end logits) at real positions, side by side."""
    return np.concatenate([np.where(mask, outputs[name], 0.0) for name in spec.output_names], axis=1)


def _logits(spec: TaskSpec, outputs: dict[str, np.ndarray], mask: np.ndarray) -> np.ndarray:
    """The logits of each text, of each real token, or of each choice set."""
    logits = outputs["logits"].astype(np.float64)
    return logits[mask] if spec.per_token_outputs() else logits


# TaskSpec.compared_as -> one vector per compared item.
_VECTORS = {"mean-pooled": _mean_pooled, "spans": _spans, "logits": _logits}


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return (a * b).sum(axis=-1) / np.maximum(norms, 1e-12)


def _best_spans(outputs: dict[str, np.ndarray], mask: np.ndarray) -> np.ndarray:
    """(start, end) of the best span per row: end >= start, at most MAX_ANSWER_TOKENS long."""
    start, end = (np.where(mask, outputs[name], -np.inf) for name in ("start_logits", "end_logits"))
    length = mask.shape[1]
    band = np.triu(np.ones((length, length), dtype=bool)) & ~np.triu(np.ones((length, length), dtype=bool), MAX_ANSWER_TOKENS)
    scores = np.where(band, start[:, :, None] + end[:, None, :], -np.inf)
    best = scores.reshape(len(scores), -1).argmax(axis=1)
    return np.stack(np.unravel_index(best, (length, length)), axis=1)
