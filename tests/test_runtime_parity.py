"""Parity of the torch-free pipelines with transformers' pipelines, task by task and option by option
(question-answering and fill-mask: test_runtime_parity_qa.py).

Ours run the exported folder (fp32 graph, and the fused one where said); transformers runs the
checkpoint folder it came from. Results must have the same keys in the same order, the same labels,
words, offsets and tokens, and floats within 1e-4 (runtime_helpers.assert_same). int8 differs by
design and is not compared here.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers
from runtime_helpers import CONTEXT, LONG_TEXT, MASKED, MEDIUM_TEXT, QUESTION, TEXTS, assert_same

# transformers' own question-answering code, not ours
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")


# --- every task, fp32 and fused ---------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["fp32", "optimized"])
@pytest.mark.parametrize("task", ["text-classification", "token-classification", "feature-extraction"])
def test_text_tasks_single_and_list(ours, reference, task, variant):
    pipe, ref = ours(task, variant), reference(task)
    for text in TEXTS:
        assert_same(pipe(text), ref(text))
    assert_same(pipe(TEXTS, batch_size=2), ref(TEXTS))


@pytest.mark.parametrize("variant", ["fp32", "optimized"])
def test_fill_mask_single_and_list(ours, reference, variant):
    pipe, ref = ours("fill-mask", variant), reference("fill-mask")
    for text in MASKED:
        assert_same(pipe(text), ref(text))
    assert_same(pipe(MASKED), ref(MASKED))


@pytest.mark.parametrize("variant", ["fp32", "optimized"])
def test_question_answering_default(ours, reference, variant):
    pipe, ref = ours("question-answering", variant), reference("question-answering")
    assert_same(pipe(question=QUESTION, context=CONTEXT), ref(question=QUESTION, context=CONTEXT))


# --- text-classification ----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "options",
    [
        {"top_k": None},
        {"top_k": 1},
        {"top_k": 2},
        {"function_to_apply": "softmax"},
        {"function_to_apply": "sigmoid"},
        {"function_to_apply": "none"},
        {"function_to_apply": "sigmoid", "top_k": None},
        {"function_to_apply": "none", "top_k": 1},
    ],
)
def test_text_classification_options(ours, reference, options):
    pipe, ref = ours("text-classification"), reference("text-classification")
    assert_same(pipe(TEXTS[0], **options), ref(TEXTS[0], **options))
    assert_same(pipe(TEXTS, **options), ref(TEXTS, **options))


@pytest.mark.slow
def test_text_classification_pairs(ours, reference):
    pipe, ref = ours("text-classification"), reference("text-classification")
    pairs = [{"text": text, "text_pair": other} for text, other in zip(TEXTS, TEXTS[1:] + TEXTS[:1])]
    assert_same(pipe(pairs[0]), ref(pairs[0]))
    assert_same(pipe(pairs[0], top_k=None), ref(pairs[0], top_k=None))
    assert_same(pipe(pairs), ref(pairs))
    mixed = [TEXTS[0], pairs[1], TEXTS[2]]
    assert_same(pipe(mixed), ref(mixed))


def test_text_classification_long_text_is_truncated(ours, reference):
    pipe, ref = ours("text-classification"), reference("text-classification")
    # transformers' text-classification does not truncate unless told to
    assert_same(pipe(LONG_TEXT), ref(LONG_TEXT, truncation=True))
    assert_same(pipe({"text": LONG_TEXT, "text_pair": LONG_TEXT}, top_k=None),
                ref({"text": LONG_TEXT, "text_pair": LONG_TEXT}, top_k=None, truncation=True))


@pytest.mark.slow
@pytest.mark.parametrize(
    "labels, extra_config",
    [
        (["SCORE"], {"problem_type": "regression"}),  # raw logit
        (["SCORE"], {}),  # one label: sigmoid
        (["TOXIC", "OBSCENE", "THREAT", "INSULT"], {"problem_type": "multi_label_classification"}),  # sigmoid
        (["A", "B", "C"], {"problem_type": "single_label_classification"}),  # softmax
        (["A", "B", "C"], {}),
    ],
    ids=["regression", "one-label", "multi-label", "single-label", "three-labels"],
)
def test_text_classification_problem_types(pair, labels, extra_config):
    pipe, ref = pair("text-classification", labels=labels, extra_config=extra_config, seed=11)
    for options in ({}, {"top_k": None}, {"top_k": 2}, {"function_to_apply": "softmax"}):
        assert_same(pipe(TEXTS[:3], **options), ref(TEXTS[:3], **options))
        assert_same(pipe(TEXTS[3], **options), ref(TEXTS[3], **options))


def test_regression_score_is_the_raw_logit(pair):
    pipe, _ = pair("text-classification", labels=["SCORE"], extra_config={"problem_type": "regression"}, seed=11)
    ids = pipe.context.tokenizer.encode([TEXTS[0]])[0].ids
    logits = pipe.model.run({"input_ids": np.array([ids]), "attention_mask": np.ones((1, len(ids)), np.int64)})
    assert pipe(TEXTS[0]) == [{"label": "SCORE", "score": pytest.approx(float(logits["logits"][0, 0]), abs=1e-6)}]


# --- token-classification ---------------------------------------------------------------------

STRATEGIES = ["none", "simple", "first", "average", "max"]


@pytest.mark.slow
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("ignore_labels", [None, [], ["O", "B-PER", "I-MISC"]])
def test_token_classification_strategies(ours, reference, strategy, ignore_labels):
    pipe, ref = ours("token-classification"), reference("token-classification")
    options = {"aggregation_strategy": strategy}
    if ignore_labels is not None:
        options["ignore_labels"] = ignore_labels
    for text in TEXTS:
        assert_same(pipe(text, **options), ref(text, **options))
    assert_same(pipe(TEXTS, **options), ref(TEXTS, **options))


@pytest.mark.slow
@pytest.mark.parametrize("strategy", STRATEGIES[1:])
@pytest.mark.parametrize("stride", [0, 16, 40])
def test_token_classification_windows(pair, strategy, stride):
    """A text four times the model's length, in windows overlapping by `stride` tokens."""
    pipe, ref = pair("token-classification", max_position_embeddings=64, seed=12)
    for ignore_labels in (None, []):
        options = {"aggregation_strategy": strategy, "stride": stride}
        if ignore_labels is not None:
            options["ignore_labels"] = ignore_labels
        assert_same(pipe(MEDIUM_TEXT, **options), ref(MEDIUM_TEXT, **options))


@pytest.mark.slow
def test_token_classification_default_windows_on_a_full_size_model(ours, reference):
    """With a 512-token model and no stride given, long texts are windowed with a 128-token overlap."""
    pipe, ref = ours("token-classification"), reference("token-classification")
    for strategy in ("simple", "first"):
        assert_same(pipe(LONG_TEXT, aggregation_strategy=strategy), ref(LONG_TEXT, aggregation_strategy=strategy, stride=128))


def test_token_classification_windows_cover_the_whole_text(pair):
    pipe, _ = pair("token-classification", max_position_embeddings=64, seed=12)
    tokens = pipe(MEDIUM_TEXT, ignore_labels=[])
    encoding = pipe.context.tokenizer.encode([MEDIUM_TEXT], max_length=10**6)[0]
    content = [i for i, special in enumerate(encoding.special_tokens_mask) if not special]
    # every token of the text appears once, with its index and offsets in the whole text
    assert [token["index"] for token in tokens] == content
    assert [(token["start"], token["end"]) for token in tokens] == [encoding.offsets[i] for i in content]


# --- feature-extraction -----------------------------------------------------------------------


def test_feature_extraction_tensors_and_long_text(ours, reference):
    pipe, ref = ours("feature-extraction"), reference("feature-extraction")
    assert_same(pipe(TEXTS[0], return_tensors=True), ref(TEXTS[0], return_tensors=True))
    assert_same(pipe(LONG_TEXT), ref(LONG_TEXT, truncation=True))


@pytest.mark.slow
@pytest.mark.parametrize("pooling", ["mean", "cls"])
@pytest.mark.parametrize("normalize", [False, True])
def test_feature_extraction_pooling(ours, reference, pooling, normalize):
    pipe, ref = ours("feature-extraction"), reference("feature-extraction")
    for text in TEXTS:
        tokens = np.array(ref(text)[0])
        vector = tokens.mean(axis=0) if pooling == "mean" else tokens[0]
        if normalize:
            vector = vector / np.linalg.norm(vector)
        assert_same(pipe(text, pooling=pooling, normalize=normalize), vector.tolist())
    assert len(pipe(TEXTS, pooling=pooling, normalize=normalize)) == len(TEXTS)


def test_feature_extraction_normalize_token_vectors(ours, reference):
    pipe, ref = ours("feature-extraction"), reference("feature-extraction")
    tokens = np.array(ref(TEXTS[0]))
    assert_same(pipe(TEXTS[0], normalize=True), (tokens / np.linalg.norm(tokens, axis=-1, keepdims=True)).tolist())


# --- multiple-choice (no transformers pipeline: the model's softmax) ---------------------------


@pytest.fixture(scope="module")
def choice_reference(checkpoints):
    folder = checkpoints["multiple-choice"]
    model = transformers.DistilBertForMultipleChoice.from_pretrained(folder).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)

    def scores(prompt: str, choices: list[str]) -> list[dict]:
        batch = tokenizer([prompt] * len(choices), choices, padding=True, truncation=True, return_tensors="pt")
        with torch.no_grad():
            logits = model(input_ids=batch["input_ids"][None], attention_mask=batch["attention_mask"][None]).logits
        probabilities = logits[0].softmax(-1).tolist()
        return [{"choice": choice, "score": score} for choice, score in zip(choices, probabilities)]

    return scores


CHOICE_ITEMS = [
    ("Maria lives in", ["Paris.", "a small flat near the United Nations building in Geneva.", "London"]),
    ("The battery", ["easily lasts two days.", "died."]),
    ("Where does John fly?", ["New York", "London", "Rome", "Geneva", "Paris"]),
    (LONG_TEXT, ["truncated to the model's length", "yes"]),
]


@pytest.mark.slow
def test_multiple_choice(ours, choice_reference):
    pipe = ours("multiple-choice")
    for prompt, choices in CHOICE_ITEMS:
        assert_same(pipe(prompt, choices=choices), choice_reference(prompt, choices))
    items = [{"prompt": prompt, "choices": choices} for prompt, choices in CHOICE_ITEMS]
    assert_same(pipe(items, batch_size=2), [choice_reference(prompt, choices) for prompt, choices in CHOICE_ITEMS])


def test_multiple_choice_keeps_the_given_order(ours):
    pipe = ours("multiple-choice")
    prompt, choices = CHOICE_ITEMS[2]
    forward = pipe(prompt, choices=choices)
    backward = pipe(prompt, choices=choices[::-1])
    assert [entry["choice"] for entry in forward] == choices
    assert_same(backward, forward[::-1], atol=1e-6)
    assert sum(entry["score"] for entry in forward) == pytest.approx(1.0, abs=1e-6)
