"""Fidelity targets: which figures bound a quantized variant's closeness to fp32, per head, and the
one test of a target against recorded figures.

Each head is compared with fp32 as its TaskSpec's `compared_as` says (graph/fidelity.py), and its
target bounds the figures that mean something for it:

  probabilities  class probabilities of a text or choice set, label probabilities of each token,
                 vocabulary probabilities of each token (fill-mask): no probability may move by more
                 than --max-prob-diff; the share of equal top-1 predictions may be bounded with
                 --min-agreement.
  spans          question answering: the probability of fp32's best answer span may move by at most
                 --max-prob-diff; the share of equal best spans by --min-agreement.
  mean-pooled    embeddings: cosine of mean-pooled sentence vectors, mean >= --min-cosine and
                 worst >= --min-worst-cosine.

Why these defaults. Cosine of raw logits (the old measure of every head) turns a two-class logit
vector around whenever an uncertain input has both logits near zero: a real sentiment classifier
(all-MiniLM-L6-v2 fine-tuned on Pang & Lee sentence polarity) measured a worst cosine near -1 for
int8 graphs whose predictions barely moved, and no int8 graph met the old target. A probability that
moves by at most 0.1 can change a prediction only where fp32's top two classes were within 0.2 of
each other (a near tie, right about as often as wrong), so --max-prob-diff 0.1 keeps the predictions
that mean something while the figures of real int8 graphs meet it (README's figures). Top-1
agreement counts near ties as misses, which is why it has no default floor: random-weight and
uncertain models flip near ties freely. The embedding targets are those all-MiniLM-L6-v2's int8
graphs meet on real text (bench/minilm_fidelity.py).

A target is a mapping {bound: value} as the manifest records it (manifest.Target; manifest.meets
judges figures against it). Manifests written before these measures record cosine targets and
cosine figures for every head: they are judged as written.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import OptionError
from .options import MAX_PROB_DIFF, MIN_AGREEMENT, MIN_COSINE, MIN_WORST_COSINE, Option
from .tasks import TaskSpec


@dataclass(frozen=True)
class Bound:
    """One bound of a target: the option that sets it, the figure it bounds, and which way."""

    option: Option
    figures: tuple[str, ...]  # the figure it bounds: the first of these a record holds
    at_least: bool  # figure >= value (else figure <= value)
    label: str


BOUNDS: dict[str, Bound] = {
    bound.option.name: bound
    for bound in (
        Bound(MIN_COSINE, ("mean_cosine",), True, "mean cosine"),
        Bound(MIN_WORST_COSINE, ("min_cosine",), True, "worst cosine"),
        Bound(MAX_PROB_DIFF, ("max_prob_diff",), False, "max prob diff"),
        Bound(MIN_AGREEMENT, ("top1_agreement", "span_agreement"), True, "agreement"),
    )
}
# TaskSpec.compared_as -> the bounds of its target, and the average figure the accuracy search ranks
# ops by, with whether it is a similarity (1 at fp32) rather than a difference (0 at fp32).
MEASURES: dict[str, tuple[tuple[str, ...], str, bool]] = {
    "probabilities": (("max_prob_diff", "min_agreement"), "mean_prob_diff", False),
    "spans": (("max_prob_diff", "min_agreement"), "mean_prob_diff", False),
    "mean-pooled": (("min_cosine", "min_worst_cosine"), "mean_cosine", True),
}


def target_for(spec: TaskSpec, given: dict[str, float | None] | None = None) -> dict[str, float | None]:
    """The target of `spec`'s head: each of its bounds as `given` (checked), else its default. An
    OptionError when a bound of another measure is given (--min-cosine for a classifier)."""
    names = MEASURES[spec.compared_as][0]
    for name, value in (given or {}).items():
        if value is not None and name not in names:
            flags = " / ".join(BOUNDS[other].option.flag for other in names)
            raise OptionError(f"{BOUNDS[name].option.flag} does not apply to {spec.name}, which is compared by "
                              f"{spec.compared_as}: use {flags}")
    return {name: BOUNDS[name].option.value((given or {}).get(name)) for name in names}


def loss(figures: dict, spec: TaskSpec) -> float:
    """How far from fp32 on average, lower is better: what the accuracy search ranks ops by."""
    _, figure, similarity = MEASURES[spec.compared_as]
    return 1.0 - figures[figure] if similarity else figures[figure]


def measures(figures: dict, bound: str) -> bool:
    """Whether `figures` hold the figure `bound` bounds."""
    return any(key in figures for key in BOUNDS[bound].figures)
