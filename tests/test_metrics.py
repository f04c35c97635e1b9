"""checks/metrics.py against independent implementations on the same predictions: scikit-learn
(accuracy, macro F1, top-k accuracy, nearest neighbours), seqeval (entity chunking and F1 in its
default mode), torchmetrics' squad (the official SQuAD normalisation, exact match and F1), scipy
(Spearman, the Wilson interval), on crafted edge cases and random ones."""

from __future__ import annotations

import numpy as np
import pytest
import seqeval.metrics as seqeval
from scipy import stats
from seqeval.metrics.sequence_labeling import get_entities
from sklearn import metrics as sk
from sklearn.neighbors import NearestNeighbors
from torchmetrics.functional.text import squad

from distilbert_onnx.checks import metrics
from distilbert_onnx.checks.metrics import Estimate, TaskScore, metric_drop

EXACT = 1e-9  # points: far below the 0.01 the table prints


def test_accuracy_and_macro_f1_equal_scikit_learn():
    rng = np.random.default_rng(3)
    cases = [
        ([0, 1, 1, 0, 2], [0, 1, 0, 0, 1]),  # class 2 never predicted
        ([0, 0, 0, 0], [0, 0, 1, 1]),  # class 1 only predicted
        ([1, 1, 1], [1, 1, 1]),  # one class, all right
        ([0, 1], [1, 0]),  # all wrong
        (rng.integers(0, 5, 300).tolist(), rng.integers(0, 5, 300).tolist()),
    ]
    for gold, predicted in cases:
        figures = metrics.class_figures(gold, predicted)
        assert figures["accuracy"].value == pytest.approx(100 * sk.accuracy_score(gold, predicted), abs=EXACT)
        assert figures["macro_f1"].value == pytest.approx(100 * sk.f1_score(gold, predicted, average="macro",
                                                                            zero_division=0), abs=EXACT)
        assert figures["macro_f1"].low <= figures["macro_f1"].value <= figures["macro_f1"].high


def test_multi_label_accuracy_and_macro_f1_equal_scikit_learn():
    gold = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 1, 0, 1]], dtype=bool)  # label 2 nowhere
    predicted = np.array([[1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0]], dtype=bool)
    figures = metrics.multilabel_figures(gold, predicted)
    assert figures["accuracy"].value == pytest.approx(100 * sk.accuracy_score(gold, predicted), abs=EXACT)
    assert figures["macro_f1"].value == pytest.approx(100 * sk.f1_score(gold, predicted, average="macro", zero_division=0),
                                                      abs=EXACT)


def test_wilson_interval_equals_scipy():
    for hits, n in [(7, 20), (0, 5), (5, 5), (911, 1000), (1, 1)]:
        estimate = metrics.share(np.arange(n) < hits)
        expected = stats.binomtest(hits, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert estimate.interval == "wilson"
        assert (estimate.low, estimate.high) == pytest.approx((100 * expected.low, 100 * expected.high), abs=EXACT)


TAGS = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]


def test_entity_chunking_equals_seqeval_default_mode():
    crafted = [
        ["I-PER", "I-PER", "O"],  # IOB1: an entity starting with I-
        ["B-PER", "I-PER", "B-PER", "O"],  # B after I of one type: two entities
        ["B-PER", "I-LOC", "I-LOC"],  # the type changes inside: two entities
        ["B-LOC", "E-LOC", "S-PER", "I-PER"],  # IOBES tags
        ["O", "O", "B-LOC"],  # an entity at the end
        ["O", "O"],
        [],
    ]
    rng = np.random.default_rng(0)
    random = [[TAGS[i] for i in rng.integers(0, len(TAGS), rng.integers(0, 12))] for _ in range(500)]
    for tags in crafted + random:
        assert metrics.entity_spans(tags) == [tuple(span) for span in get_entities(tags)], tags


def test_entity_figures_equal_seqeval():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "O"], ["B-LOC", "I-LOC", "O"], ["B-PER"]]
    cases = [
        [["B-PER", "I-PER", "O", "B-LOC"], ["O", "O"], ["B-LOC", "O", "O"], ["I-PER"]],  # partial span, IOB1
        [["O"] * 4, ["O"] * 2, ["O"] * 3, ["O"]],  # empty predictions
        [["B-PER", "B-PER", "O", "B-LOC"], ["B-MISC", "O"], ["B-LOC", "I-LOC", "O"], ["B-PER"]],
        gold,
    ]
    for predicted in cases:
        figures = metrics.entity_figures(gold, predicted)
        for name, reference in [("precision", seqeval.precision_score), ("recall", seqeval.recall_score),
                                ("f1", seqeval.f1_score)]:
            assert figures[name].value == pytest.approx(100 * reference(gold, predicted, zero_division=0), abs=EXACT)
    with pytest.raises(ValueError, match="'PER' is not an IOB tag"):
        metrics.entity_spans(["PER"])


def _torchmetrics_squad(gold: list[list[str]], predicted: list[str]) -> dict:
    """torchmetrics' squad; a question without an answer is given as the empty answer, as the official
    SQuAD 2.0 script does."""
    preds = [{"prediction_text": text, "id": str(i)} for i, text in enumerate(predicted)]
    target = [{"answers": {"text": answers or [""], "answer_start": [0] * max(len(answers), 1)}, "id": str(i)}
              for i, answers in enumerate(gold)]
    return {name: float(value) for name, value in squad(preds, target).items()}


def test_squad_exact_match_and_f1_equal_the_official_computation():
    gold = [
        ["Denver Broncos", "The Denver Broncos"],  # several gold answers
        ["the Eiffel Tower."],  # articles and punctuation
        [],  # unanswerable
        [],  # unanswerable, answered anyway
        ["Paris"],  # answerable, left unanswered
        ["1,000 km", "a thousand kilometres"],
        ["in the north of Italy"],
    ]
    predicted = ["Broncos", "Eiffel tower", "", "Rome", "", "1000 km", "north Italy"]
    figures = metrics.answer_figures(gold, predicted)
    reference = _torchmetrics_squad(gold, predicted)
    assert figures["exact_match"].value == pytest.approx(reference["exact_match"], abs=1e-4)  # torchmetrics sums in float32
    assert figures["f1"].value == pytest.approx(reference["f1"], abs=1e-4)
    assert metrics.normalize_answer("  The  Eiffel-Tower!! ") == "eiffeltower"
    assert metrics.answer_f1("", "") == 1.0 and metrics.answer_f1("x", "") == 0.0


def test_top_k_accuracy_equals_scikit_learn():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(60, 30))
    gold = rng.integers(0, 30, 60)
    gold[:10] = scores[:10].argmax(axis=1)  # some right at top 1
    ranked = np.argsort(-scores, axis=1)[:, :5].tolist()
    figures = metrics.top_k_figures(gold.tolist(), ranked)
    for k in (1, 5):
        expected = sk.top_k_accuracy_score(gold, scores, k=k, labels=np.arange(30))
        assert figures[f"top{k}_accuracy"].value == pytest.approx(100 * expected, abs=EXACT)


def test_spearman_equals_scipy_with_ties():
    rng = np.random.default_rng(2)
    cosines = rng.normal(size=50)
    gold = rng.integers(0, 6, 50).astype(float)  # many ties, as gold scores have
    cosines[:5] = cosines[5]  # ties in the predictions too
    figures = metrics.similarity_figures(cosines, gold)
    assert figures["spearman"].value == pytest.approx(100 * stats.spearmanr(cosines, gold).statistic, abs=EXACT)
    assert figures["spearman"].interval == "bootstrap"


def test_knn_accuracy_equals_scikit_learn_nearest_neighbours():
    rng = np.random.default_rng(4)
    vectors = rng.normal(size=(40, 8))
    labels = rng.integers(0, 3, 40)
    neighbours = NearestNeighbors(n_neighbors=2, metric="cosine").fit(vectors).kneighbors(vectors, return_distance=False)
    assert (neighbours[:, 0] == np.arange(40)).all()
    figures = metrics.knn_figures(vectors, labels)
    assert figures["knn_accuracy"].value == pytest.approx(100 * np.mean(labels[neighbours[:, 1]] == labels), abs=EXACT)


def test_agreement_with_a_reference():
    rng = np.random.default_rng(5)
    reference = rng.normal(size=(30, 8))
    same = metrics.agreement_figures(reference, reference)
    assert same["nn_agreement"].value == 100.0 and same["mean_cosine"].value == pytest.approx(100.0)
    noisy = reference + rng.normal(scale=0.5, size=reference.shape)
    figures = metrics.agreement_figures(noisy, reference)
    cosines = (noisy * reference).sum(1) / np.linalg.norm(noisy, axis=1) / np.linalg.norm(reference, axis=1)
    assert figures["mean_cosine"].value == pytest.approx(100 * cosines.mean(), abs=EXACT)
    expected = np.mean(metrics.nearest_other(noisy) == metrics.nearest_other(reference))
    assert figures["nn_agreement"].value == pytest.approx(100 * expected, abs=EXACT) and expected < 1


def test_intervals_are_reproducible_and_hold_the_value():
    rng = np.random.default_rng(6)
    gold, predicted = rng.integers(0, 3, 200), rng.integers(0, 3, 200)
    first, second = metrics.class_figures(gold, predicted), metrics.class_figures(gold, predicted)
    assert first == second
    for estimate in first.values():
        assert estimate.low <= estimate.value <= estimate.high and estimate.high - estimate.low < 30


def test_metric_drop_is_in_points_of_the_headline_metric():
    def score(value: float) -> TaskScore:
        return TaskScore("accuracy", {"accuracy": Estimate(value, value - 1, value + 1, "wilson")}, 100)

    assert metric_drop(score(91.06), score(90.71)) == pytest.approx(0.35)
    assert metric_drop(score(90.0), score(91.0)) == pytest.approx(-1.0)
    with pytest.raises(ValueError):
        metric_drop(score(90.0), TaskScore("f1", {"f1": Estimate(1, 0, 2, "bootstrap")}, 10))


def test_paired_drop_is_the_bootstrap_of_the_difference_on_the_same_rows():
    rng = np.random.default_rng(7)
    gold = rng.integers(0, 2, 300)
    reference = np.where(rng.random(300) < 0.8, gold, 1 - gold)
    turned = rng.random(300) < 0.1  # the candidate turns a tenth of the predictions around
    candidate = np.where(turned, 1 - reference, reference)
    ours, theirs = (TaskScore("accuracy", metrics.class_figures(gold, p), 300) for p in (reference, candidate))
    drop = metrics.paired_drop(ours, theirs)
    # by hand: the same resampled rows score both; the drop per resample; its 2.5th and 97.5th percentiles
    rows = np.random.default_rng(metrics.BOOTSTRAP_SEED).integers(0, 300, size=(metrics.BOOTSTRAP_RESAMPLES, 300))
    per_resample = 100 * ((reference == gold)[rows].mean(axis=1) - (candidate == gold)[rows].mean(axis=1))
    assert drop.value == pytest.approx(100 * ((reference == gold).mean() - (candidate == gold).mean()), abs=EXACT)
    assert (drop.low, drop.high) == pytest.approx(tuple(np.percentile(per_resample, [2.5, 97.5])), abs=EXACT)
    assert drop.interval == "paired bootstrap" and drop.low < drop.value < drop.high
    # narrower than the two accuracies' own intervals: the rows both get right or wrong cancel
    assert drop.high - drop.low < ours.figures["accuracy"].high - ours.figures["accuracy"].low
    same = metrics.paired_drop(ours, ours)
    assert (same.value, same.low, same.high) == (0.0, 0.0, 0.0)
    # a corpus-level metric (entity F1) pairs the same way, through its own resampled statistic
    tags = [["B-PER", "O"], ["O", "B-LOC"], ["B-ORG", "I-ORG"]] * 20
    worse = [list(row) for row in tags]
    worse[0] = ["O", "O"]
    entity = metrics.paired_drop(TaskScore("f1", metrics.entity_figures(tags, tags), 60),
                                 TaskScore("f1", metrics.entity_figures(tags, worse), 60))
    assert entity.value > 0 and entity.low <= entity.value <= entity.high


def test_a_paired_drop_needs_the_same_items():
    one, other = (TaskScore("accuracy", metrics.class_figures([0] * n, [0] * n), n) for n in (5, 6))
    with pytest.raises(ValueError):
        metrics.paired_drop(one, other)
