"""Task metrics on predictions already made, each with a 95% confidence interval: pure numpy.

Every figure is in points (0-100: a percentage, or a correlation or cosine times 100), higher is
better, so the drop of a variant from its reference is `reference.value - variant.value` points.

Intervals, reproducible run to run:
  shares of rows (accuracy, exact match, top-k accuracy, agreement): the Wilson score interval;
  everything else (macro F1, entity precision / recall / F1, SQuAD F1, Spearman, mean cosine): the
  percentile bootstrap over rows, BOOTSTRAP_RESAMPLES resamples drawn with BOOTSTRAP_SEED.
  the drop of one model from another on the same rows (`paired_drop`): the percentile bootstrap of
  the difference, both models scored on each resample's rows, so that what the two share cancels.

The definitions follow the references the tests compare with: scikit-learn's accuracy_score and
f1_score(average="macro"), seqeval's default (conlleval-style) entity chunking, the official SQuAD
2.0 answer normalisation, exact match and F1, scipy's spearmanr (average ranks for ties).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

Z_95 = 1.959963984540054  # the normal quantile of 0.975
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0
# Resampled index matrices are drawn in blocks of at most this many entries.
_BLOCK_ENTRIES = 4_000_000


# Maps a (resamples x items) matrix of item indices to the figure, as a fraction, per resample.
Resampled = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Estimate:
    """One figure in points with its 95% interval, how the interval was made, and the figure on
    resampled items (what a paired comparison of two models on the same items needs)."""

    value: float
    low: float
    high: float
    interval: str  # "wilson", "bootstrap" or "paired bootstrap"
    items: int = 0
    resampled: Resampled | None = field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict:
        return {"value": self.value, "low": self.low, "high": self.high, "interval": self.interval}


@dataclass(frozen=True)
class TaskScore:
    """A task's figures on some rows; `metric` names the headline one (the one a gate compares)."""

    metric: str
    figures: dict[str, Estimate]
    rows: int

    @property
    def value(self) -> float:
        return self.figures[self.metric].value

    def as_dict(self) -> dict:
        return {"metric": self.metric, "value": self.value, "rows": self.rows,
                "figures": {name: estimate.as_dict() for name, estimate in self.figures.items()}}


def metric_drop(reference: TaskScore, candidate: TaskScore) -> float:
    """How many points `candidate` lost against `reference` on the headline metric (negative: gained)."""
    if reference.metric != candidate.metric:
        raise ValueError(f"cannot compare {candidate.metric} with {reference.metric}")
    return reference.value - candidate.value


def paired_drop(reference: TaskScore, candidate: TaskScore) -> Estimate:
    """The headline metric's drop from `reference` to `candidate` (both scored on the same rows) with
    the 95% interval of the paired bootstrap: each resample scores both on the same rows, so rows
    they predict alike add no uncertainty, and rows they predict differently add all of it."""
    theirs, mine = reference.figures[reference.metric], candidate.figures[candidate.metric]
    if theirs.items != mine.items:
        raise ValueError(f"cannot pair {mine.items} scored items with {theirs.items}")
    drop = metric_drop(reference, candidate) / 100
    return bootstrapped(drop, lambda rows: theirs.resampled(rows) - mine.resampled(rows), mine.items,
                        "paired bootstrap")


# --- intervals ------------------------------------------------------------------------------------


def share(hits: np.ndarray) -> Estimate:
    """The share of true entries, in points, with its Wilson score interval."""
    hits = np.asarray(hits, dtype=bool)
    n = hits.size
    p = float(hits.mean()) if n else 0.0
    z2 = Z_95 * Z_95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z_95 / (1 + z2 / n) * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return Estimate(100 * p, 100 * max(0.0, centre - half), 100 * min(1.0, centre + half), "wilson",
                    n, lambda rows: hits[rows].mean(axis=1))


def bootstrapped(value: float, statistic: Resampled, n: int, interval: str = "bootstrap") -> Estimate:
    """`value` (a fraction) in points, with the percentile bootstrap interval of `statistic`, which
    maps a (resamples x n) matrix of row indices to one value per resample."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    per_block = max(1, _BLOCK_ENTRIES // max(n, 1))
    values = []
    for start in range(0, BOOTSTRAP_RESAMPLES, per_block):
        count = min(per_block, BOOTSTRAP_RESAMPLES - start)
        values.append(statistic(rng.integers(0, n, size=(count, n))))
    low, high = np.percentile(np.concatenate(values), [2.5, 97.5])
    return Estimate(100 * float(value), 100 * float(low), 100 * float(high), interval, n, statistic)


def mean_of(values: np.ndarray) -> Estimate:
    """The mean of per-row values in [0, 1], in points, with its bootstrap interval."""
    values = np.asarray(values, dtype=np.float64)
    return bootstrapped(values.mean(), lambda rows: values[rows].mean(axis=1), values.size)


def _divide(numerator, denominator):
    """numerator / denominator, 0 where the denominator is 0 (scikit-learn's and seqeval's zero_division)."""
    numerator, denominator = np.asarray(numerator, dtype=np.float64), np.asarray(denominator, dtype=np.float64)
    return np.divide(numerator, denominator, out=np.zeros(np.broadcast(numerator, denominator).shape),
                     where=denominator != 0)


# --- classification -------------------------------------------------------------------------------


def class_figures(gold: Sequence[int], predicted: Sequence[int]) -> dict[str, Estimate]:
    """Accuracy and macro F1 (the mean F1 over the classes that occur in gold or predictions)."""
    gold, predicted = np.asarray(gold), np.asarray(predicted)
    classes = np.union1d(gold, predicted)
    gold_hot = gold[:, None] == classes[None, :]
    predicted_hot = predicted[:, None] == classes[None, :]
    return {"accuracy": share(gold == predicted), "macro_f1": _macro_f1(gold_hot, predicted_hot, only_present=True)}


def multilabel_figures(gold: np.ndarray, predicted: np.ndarray) -> dict[str, Estimate]:
    """Multi-label rows as (rows x labels) booleans: subset accuracy (every label right) and macro F1
    over all labels (a label no row has nor is given scores 0, as in scikit-learn)."""
    gold, predicted = np.asarray(gold, dtype=bool), np.asarray(predicted, dtype=bool)
    return {"accuracy": share((gold == predicted).all(axis=1)),
            "macro_f1": _macro_f1(gold, predicted, only_present=False)}


def _macro_f1(gold_hot: np.ndarray, predicted_hot: np.ndarray, only_present: bool) -> Estimate:
    hits = (gold_hot & predicted_hot).astype(np.float64)
    gold_hot, predicted_hot = gold_hot.astype(np.float64), predicted_hot.astype(np.float64)

    def macro(tp: np.ndarray, gold_count: np.ndarray, predicted_count: np.ndarray) -> np.ndarray:
        occurs = gold_count + predicted_count
        f1 = _divide(2 * tp, occurs)  # 2tp / (2tp + fp + fn)
        if not only_present:
            return f1.mean(axis=-1)
        present = occurs > 0
        return (f1 * present).sum(axis=-1) / present.sum(axis=-1)

    def statistic(rows: np.ndarray) -> np.ndarray:
        return macro(hits[rows].sum(axis=1), gold_hot[rows].sum(axis=1), predicted_hot[rows].sum(axis=1))

    value = macro(hits.sum(axis=0), gold_hot.sum(axis=0), predicted_hot.sum(axis=0))
    return bootstrapped(float(value), statistic, len(hits))


def choice_figures(gold: Sequence[int], predicted: Sequence[int]) -> dict[str, Estimate]:
    """Accuracy of the chosen choice."""
    return {"accuracy": share(np.asarray(gold) == np.asarray(predicted))}


# --- entities -------------------------------------------------------------------------------------

TAG_PREFIXES = ("B", "I", "E", "S")


def split_tag(tag: str) -> tuple[str, str | None]:
    """("O", None) or (prefix, type) of an IOB / IOBES tag such as "B-PER"; a ValueError otherwise."""
    if tag == "O":
        return "O", None
    prefix, dash, kind = tag.partition("-")
    if prefix not in TAG_PREFIXES or not dash or not kind:
        raise ValueError(f"{tag!r} is not an IOB tag (O, B-TYPE, I-TYPE; E-TYPE and S-TYPE for IOBES)")
    return prefix, kind


def entity_spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """The entities of one tagged sequence as (type, first, last) word positions, chunked as
    seqeval's default mode does: an entity ends at O, at B or S, after E or S, or where the type
    changes; an I or E after O (IOB1) starts one."""
    spans: list[tuple[str, int, int]] = []
    previous, previous_type, first = "O", None, 0
    for position, tag in enumerate([*tags, "O"]):
        prefix, kind = split_tag(tag)
        if previous != "O" and (previous in ("E", "S") or prefix in ("B", "S", "O") or kind != previous_type):
            spans.append((previous_type, first, position - 1))
        if prefix != "O" and (prefix in ("B", "S") or previous in ("O", "E", "S") or kind != previous_type):
            first = position
        previous, previous_type = prefix, kind
    return spans


def entity_figures(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, Estimate]:
    """Entity-level micro precision, recall and F1 over rows of word tags: an entity counts when its
    type, first and last word all match."""
    counts = np.zeros((len(gold), 3))  # per row: matched, predicted, gold entities
    for row, (gold_tags, predicted_tags) in enumerate(zip(gold, predicted)):
        gold_set, predicted_set = set(entity_spans(gold_tags)), set(entity_spans(predicted_tags))
        counts[row] = len(gold_set & predicted_set), len(predicted_set), len(gold_set)

    def figures(sums: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        precision = _divide(sums[..., 0], sums[..., 1])
        recall = _divide(sums[..., 0], sums[..., 2])
        return precision, recall, _divide(2 * precision * recall, precision + recall)

    totals = figures(counts.sum(axis=0))
    names = ("precision", "recall", "f1")
    return {name: bootstrapped(float(totals[i]), lambda rows, i=i: figures(counts[rows].sum(axis=1))[i], len(counts))
            for i, name in enumerate(names)}


# --- question answering ---------------------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD's answer normalisation: lower case, punctuation removed, the articles a / an / the
    removed, whitespace collapsed."""
    text = "".join(character for character in text.lower() if character not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def answer_f1(predicted: str, gold: str) -> float:
    """SQuAD's token F1 of two answers; an empty answer on either side scores 1 only if both are."""
    predicted_tokens, gold_tokens = normalize_answer(predicted).split(), normalize_answer(gold).split()
    if not predicted_tokens or not gold_tokens:
        return float(predicted_tokens == gold_tokens)
    same = sum((Counter(predicted_tokens) & Counter(gold_tokens)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted_tokens), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def gold_answers(answers: Sequence[str]) -> list[str]:
    """The answers that count, as SQuAD 2.0 takes them: those with something left after
    normalisation, or [""] (no answer) when none has."""
    kept = [answer for answer in answers if normalize_answer(answer)]
    return kept or [""]


def answer_figures(gold: Sequence[Sequence[str]], predicted: Sequence[str]) -> dict[str, Estimate]:
    """SQuAD exact match and F1: each row scores its best match over its gold answers; a row with no
    gold answer is matched only by the empty prediction."""
    exact, f1 = np.zeros(len(gold), dtype=bool), np.zeros(len(gold))
    for row, (answers, prediction) in enumerate(zip(gold, predicted)):
        answers = gold_answers(answers)
        exact[row] = any(normalize_answer(prediction) == normalize_answer(answer) for answer in answers)
        f1[row] = max(answer_f1(prediction, answer) for answer in answers)
    return {"exact_match": share(exact), "f1": mean_of(f1)}


# --- fill-mask ------------------------------------------------------------------------------------


def top_k_figures(gold: Sequence[int], ranked: Sequence[Sequence[int]], ks: Sequence[int] = (1, 5)) -> dict[str, Estimate]:
    """top-k accuracy of each masked word: its token id among the k likeliest proposals."""
    return {f"top{k}_accuracy": share([token in list(proposals)[:k] for token, proposals in zip(gold, ranked)])
            for k in ks}


# --- sentence vectors -----------------------------------------------------------------------------


def rank_average(values: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties given the mean of the ranks they span (scipy.stats.rankdata's "average")."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values))
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (nan where either side is constant)."""
    rx, ry = rank_average(x), rank_average(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = np.sqrt((rx * rx).sum() * (ry * ry).sum())
    return float((rx * ry).sum() / denominator) if denominator else float("nan")


def similarity_figures(cosines: np.ndarray, gold_scores: np.ndarray) -> dict[str, Estimate]:
    """Spearman correlation of the pairs' cosines with their gold scores."""
    cosines, gold_scores = np.asarray(cosines, dtype=np.float64), np.asarray(gold_scores, dtype=np.float64)

    def statistic(rows: np.ndarray) -> np.ndarray:
        return np.array([spearman(cosines[sample], gold_scores[sample]) for sample in rows])

    value = spearman(cosines, gold_scores)
    return {"spearman": bootstrapped(value, lambda rows: np.nan_to_num(statistic(rows)), len(cosines))}


def unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def nearest_other(vectors: np.ndarray) -> np.ndarray:
    """For each row, the index of the most cosine-similar other row (the first of equals)."""
    vectors = unit(vectors)
    nearest = np.empty(len(vectors), dtype=np.int64)
    block = max(1, _BLOCK_ENTRIES // len(vectors))  # rows of the similarity matrix at a time
    for start in range(0, len(vectors), block):
        similarity = vectors[start : start + block] @ vectors.T
        rows = np.arange(similarity.shape[0])
        similarity[rows, start + rows] = -np.inf
        nearest[start : start + block] = similarity.argmax(axis=1)
    return nearest


def knn_figures(vectors: np.ndarray, labels: Sequence) -> dict[str, Estimate]:
    """Leave-one-out 1-nearest-neighbour accuracy: each row takes the label of its most
    cosine-similar other row."""
    labels = np.asarray(labels)
    return {"knn_accuracy": share(labels[nearest_other(vectors)] == labels)}


def agreement_figures(vectors: np.ndarray, reference: np.ndarray) -> dict[str, Estimate]:
    """Without labels, how far sentence vectors keep the reference's: the share of rows whose
    nearest other row is the same, and the mean cosine between each row's two vectors."""
    cosines = (unit(vectors) * unit(reference)).sum(axis=1)
    return {"nn_agreement": share(nearest_other(vectors) == nearest_other(reference)),
            "mean_cosine": mean_of(np.clip(cosines, -1.0, 1.0))}
