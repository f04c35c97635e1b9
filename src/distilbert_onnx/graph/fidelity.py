"""How far a variant's outputs are from the fp32 graph's on real text.

Calibration texts (a user's file, or the package's built-in sample of varied English) are tokenized
with the folder's tokenizer into the task's inputs: single texts, question/context pairs for
question answering, a prompt with four choices for multiple choice. Both graphs run on the same
batches and the figures compare them per task:

  max_abs_diff      largest difference of any output at a real (unpadded) position
  mean/min_cosine   cosine similarity of output vectors: mean-pooled sentence vectors for
                    feature-extraction, the logits of each text / token / choice set otherwise
  top1_agreement    share of equal argmax predictions (classification-type heads)
  span_agreement    share of equal best answer spans (question answering)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import DistilBertConfig
from ..probes import Runner
from ..runtime.batching import pad, plan_batches
from ..runtime.tokenizer import TextTokenizer
from ..tasks import TaskSpec

CALIBRATION_MAX_LENGTH = 256
CALIBRATION_BATCH_SIZE = 16
CHOICES = 4
MAX_ANSWER_TOKENS = 15
TOP1_TASKS = ("text-classification", "token-classification", "fill-mask", "multiple-choice")


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
    if spec.name == "question-answering":
        pairs = [(texts[i], f"{texts[(i + 1) % len(texts)]} {texts[(i + 2) % len(texts)]}") for i in range(len(texts))]
        rows = [[e.ids] for e in tokenizer.encode(pairs, max_length=limit, strategy="only_second")]
    elif spec.name == "multiple-choice":
        rows = []
        for i, prompt in enumerate(texts):
            choices = [texts[(i + k) % len(texts)] for k in range(1, CHOICES + 1)]
            rows.append([e.ids for e in tokenizer.encode([(prompt, c) for c in choices], max_length=limit)])
    else:
        rows = [[e.ids] for e in tokenizer.encode(texts, max_length=limit)]
    batches = []
    for group in plan_batches([max(len(r) for r in item) for item in rows], CALIBRATION_BATCH_SIZE):
        sequences = [sequence for index in group for sequence in rows[index]]
        input_ids, attention_mask = pad(sequences, tokenizer.pad_token_id)
        if spec.name == "multiple-choice":
            shape = (len(group), CHOICES, input_ids.shape[-1])
            input_ids, attention_mask = input_ids.reshape(shape), attention_mask.reshape(shape)
        batches.append(Batch({"input_ids": input_ids, "attention_mask": attention_mask}))
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
    for want, batch in zip(expected, batches):
        got = candidate(batch.feeds)
        mask = batch.mask
        for name in spec.output_names:
            per_token = name in spec.per_token_outputs()
            difference = np.abs(_real(want[name], mask, per_token) - _real(got[name], mask, per_token))
            max_abs_diff = max(max_abs_diff, float(difference.max()))
        vectors_want, vectors_got = _vectors(spec, want, mask), _vectors(spec, got, mask)
        cosines.append(_cosine(vectors_want, vectors_got))
        if spec.name in TOP1_TASKS:
            agreements.append(vectors_want.argmax(axis=-1) == vectors_got.argmax(axis=-1))
        elif spec.name == "question-answering":
            agreements.append((_best_spans(want, mask) == _best_spans(got, mask)).all(axis=-1))
    cosine = np.concatenate(cosines)
    figures = {
        "rows": int(cosine.size),
        "max_abs_diff": max_abs_diff,
        "mean_cosine": float(cosine.mean()),
        "min_cosine": float(cosine.min()),
    }
    if agreements:
        key = "span_agreement" if spec.name == "question-answering" else "top1_agreement"
        figures[key] = float(np.concatenate(agreements).mean())
    return figures


def _real(values: np.ndarray, mask: np.ndarray, per_token: bool) -> np.ndarray:
    """The values at real positions: per-token outputs lose their padded positions."""
    rows = values.reshape(mask.shape[0], -1).astype(np.float64)
    if not per_token:
        return rows
    return rows.reshape(mask.shape[0], mask.shape[1], -1)[mask]


def _vectors(spec: TaskSpec, outputs: dict[str, np.ndarray], mask: np.ndarray) -> np.ndarray:
    """One vector per compared item: a sentence, a token, a text's logits or a choice set."""
    if spec.name == "feature-extraction":
        hidden = outputs["last_hidden_state"].astype(np.float64)
        weights = mask[..., None].astype(np.float64)
        return (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)
    if spec.name == "question-answering":
        return np.concatenate([np.where(mask, outputs[name], 0.0) for name in spec.output_names], axis=1)
    logits = outputs["logits"].astype(np.float64)
    return logits[mask] if spec.per_token_outputs() else logits


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
