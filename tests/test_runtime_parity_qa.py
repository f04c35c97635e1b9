"""Parity with transformers' pipelines for the span and mask heads, option by option:
question-answering (windows, batches, short and long contexts) and fill-mask. The rest of the tasks:
test_runtime_parity.py; the fixtures (ours, reference, pair): conftest.py."""

from __future__ import annotations

import pytest
from runtime_helpers import CONTEXT, LONG_TEXT, MASKED, MEDIUM_TEXT, QUESTION, TEXTS, assert_same

# transformers' own question-answering code, not ours
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")


# --- question-answering -----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "options",
    [
        {"top_k": 3},
        {"top_k": 5, "max_answer_len": 3},
        {"max_answer_len": 1},
        {"handle_impossible_answer": True},
        {"handle_impossible_answer": True, "top_k": 4},
        {"align_to_words": False, "top_k": 3},
    ],
)
def test_question_answering_options(ours, reference, options):
    pipe, ref = ours("question-answering"), reference("question-answering")
    assert_same(pipe(question=QUESTION, context=CONTEXT, **options), ref(question=QUESTION, context=CONTEXT, **options))


@pytest.mark.slow
@pytest.mark.parametrize(
    "options",
    [
        {"top_k": 50},
        {"max_answer_len": 1},
        {"max_answer_len": 2, "top_k": 4},
        {"handle_impossible_answer": True, "top_k": 30},
    ],
)
def test_question_answering_short_context(ours, reference, options):
    """More candidate spans than the context holds: those cut out (end before start, too long) score 0."""
    pipe, ref = ours("question-answering"), reference("question-answering")
    context = "Paris is nice."
    answers = pipe(question="Where?", context=context, **options)
    assert_same(answers, ref(question="Where?", context=context, **options))
    answers = answers if isinstance(answers, list) else [answers]
    for answer in answers:
        if answer["score"] > 0 and answer["answer"]:
            assert context[answer["start"] : answer["end"]] == answer["answer"]
    assert sum(answer["score"] > 0 and not answer["answer"] for answer in answers) <= options.get("handle_impossible_answer", 0)


@pytest.mark.slow
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"top_k": 3},
        {"doc_stride": 64},
        {"max_seq_len": 128, "doc_stride": 32, "top_k": 2},
        {"max_seq_len": 256, "doc_stride": 0},
        {"handle_impossible_answer": True, "top_k": 3, "max_seq_len": 96, "doc_stride": 48},
        {"max_answer_len": 4, "top_k": 2},
    ],
)
def test_question_answering_long_context(ours, reference, options):
    """A context of ~3,400 tokens: windows of max_seq_len tokens overlapping by doc_stride."""
    pipe, ref = ours("question-answering"), reference("question-answering")
    question = "When does the museum open?"
    assert_same(pipe(question=question, context=LONG_TEXT, **options), ref(question=question, context=LONG_TEXT, **options))


@pytest.mark.slow
def test_question_answering_windows_on_a_short_model(pair):
    pipe, ref = pair("question-answering", max_position_embeddings=64, seed=13)
    for options in ({}, {"top_k": 3}, {"doc_stride": 8, "handle_impossible_answer": True}):
        assert_same(pipe(question=QUESTION, context=MEDIUM_TEXT, **options),
                    ref(question=QUESTION, context=MEDIUM_TEXT, **options))


@pytest.mark.slow
def test_question_answering_batches(ours, reference):
    pipe, ref = ours("question-answering"), reference("question-answering")
    questions = [QUESTION, "Who flew to London?", "What airline?"]
    contexts = [CONTEXT, LONG_TEXT, TEXTS[1]]
    assert_same(pipe(question=questions, context=contexts, top_k=2), ref(question=questions, context=contexts, top_k=2))
    assert_same(pipe(question=questions, context=CONTEXT), ref(question=questions, context=CONTEXT))
    dicts = [{"question": q, "context": c} for q, c in zip(questions, contexts)]
    assert_same(pipe(dicts, batch_size=2), ref(question=questions, context=contexts))
    assert_same(pipe(dicts[0]), ref(question=questions[0], context=contexts[0]))


def test_question_answering_max_question_len(ours, reference):
    """transformers' fast tokenizers ignore max_question_len; ours cuts the question after that many
    tokens, which answers as transformers does for the shortened question."""
    pipe, ref = ours("question-answering"), reference("question-answering")
    question = "Where does Maria Gonzalez live and where does she work for the United Nations?"
    tokens = pipe.context.tokenizer.encode([question], add_special_tokens=False)[0]
    shortened = question[: tokens.offsets[4][1]]
    assert len(pipe.context.tokenizer.encode([shortened], add_special_tokens=False)[0].ids) == 5
    assert_same(pipe(question=question, context=CONTEXT, max_question_len=5, top_k=2),
                ref(question=shortened, context=CONTEXT, top_k=2))
    # a question within the limit is untouched
    assert_same(pipe(question=question, context=CONTEXT, max_question_len=len(tokens.ids)),
                ref(question=question, context=CONTEXT))


def test_question_answering_answers_are_spans_of_the_context(ours):
    pipe = ours("question-answering")
    for answer in pipe(question=QUESTION, context=LONG_TEXT, top_k=10):
        assert LONG_TEXT[answer["start"] : answer["end"]] == answer["answer"]
        assert answer["answer"]


# --- fill-mask --------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "options",
    [
        {"top_k": 1},
        {"top_k": 3},
        {"top_k": 12},
        {"targets": ["paris", "london", "the"]},
        {"targets": ["paris", "london", "the"], "top_k": 2},
        {"targets": "paris"},
        {"targets": ["Paris", "unbelievably", "zzzq"]},  # not in the vocabulary: their first token
    ],
)
def test_fill_mask_options(ours, reference, options):
    pipe, ref = ours("fill-mask"), reference("fill-mask")
    for text in MASKED:
        assert_same(pipe(text, **options), ref(text, **options))
    assert_same(pipe(MASKED, **options), ref(MASKED, **options))


def test_fill_mask_long_text_is_truncated(ours, reference):
    pipe, ref = ours("fill-mask"), reference("fill-mask")
    text = "The [MASK] is open. " + LONG_TEXT
    assert_same(pipe(text, top_k=3), ref(text, top_k=3, tokenizer_kwargs={"truncation": True}))


def test_fill_mask_one_item_list_stays_a_list(ours, reference):
    """transformers unwraps a one-item list; ours keeps the contract 'a list in, a list out'."""
    pipe, ref = ours("fill-mask"), reference("fill-mask")
    assert_same(pipe(MASKED[:1]), [ref(MASKED[0])])
