"""question-answering: answer spans of the context, with transformers' scores and offsets.

The question and context are encoded as a pair; a context longer than `max_seq_len` is cut into
windows overlapping by `doc_stride` tokens. In each window the start and end logits of tokens outside
the context become -10000, both are turned into probabilities, and the best spans (end >= start, at
most `max_answer_len` tokens) score start x end. Spans are widened to whole words
(`align_to_words`) and reported as character offsets into the context; the same answer found in
several windows adds up its scores. `handle_impossible_answer` adds the empty answer, scored by the
[CLS] token. One answer comes as a dict, several (`top_k`) as a list.
"""

from __future__ import annotations

import numpy as np

from ..tokenizer import windows
from .base import Context, Row, TaskHandler, check_flags, check_text, softmax

NO_ANSWER_LOGIT = -10000.0


def parse(inputs, keywords: dict, options: dict) -> tuple[list, bool]:
    if inputs is None and keywords:
        question, context = keywords.get("question"), keywords.get("context")
        if isinstance(question, list) or isinstance(context, list):
            questions = question if isinstance(question, list) else [question] * len(context)
            contexts = context if isinstance(context, list) else [context] * len(questions)
            if len(questions) != len(contexts):
                raise ValueError(f"got {len(questions)} questions and {len(contexts)} contexts: give one context per question")
            return [_pair(q, c, f"item {i}") for i, (q, c) in enumerate(zip(questions, contexts))], False
        return [_pair(question, context, "the input")], True
    if isinstance(inputs, dict):
        return [_from_dict(inputs, "the input")], True
    if isinstance(inputs, (list, tuple)):
        return [_from_dict(item, f"item {i} of the input list") for i, item in enumerate(inputs)], False
    raise TypeError(
        "question-answering takes question=..., context=... (strings or lists of strings), "
        "or {'question': ..., 'context': ...} dicts"
    )


def _from_dict(item, what: str) -> tuple[str, str]:
    if not isinstance(item, dict):
        raise TypeError(f"{what} is a {type(item).__name__}: expected {{'question': ..., 'context': ...}}")
    return _pair(item.get("question"), item.get("context"), what)


def _pair(question, context, what: str) -> tuple[str, str]:
    if question is None or context is None:
        missing = "question" if question is None else "context"
        raise ValueError(f"{what} has no {missing}: question-answering needs both a question and a context")
    question, context = check_text(question, f"{what}: question"), check_text(context, f"{what}: context")
    if not question.strip() or not context.strip():
        raise ValueError(f"{what} has an empty {'question' if not question.strip() else 'context'}")
    return question, context


def limits(options: dict, context: Context) -> tuple[int, int]:
    """(max_seq_len, doc_stride) with transformers' defaults: 384 tokens, half that (at most 128) overlap."""
    max_seq_len = options["max_seq_len"] or min(context.tokenizer.model_max_length, 384)
    doc_stride = options["doc_stride"] if options["doc_stride"] is not None else min(max_seq_len // 2, 128)
    return max_seq_len, doc_stride


def encode(items: list[tuple[str, str]], context: Context, options: dict) -> list[list[Row]]:
    tokenizer = context.tokenizer
    max_seq_len, doc_stride = limits(options, context)
    questions = [_shorten(question, options["max_question_len"], context) for question, _ in items]
    room = max_seq_len - tokenizer.count_special_tokens(pair=True)
    pairs = []
    for question, (_, text) in zip(questions, items):
        question_tokens = len(tokenizer.encode([question], add_special_tokens=False)[0].ids)
        if question_tokens + doc_stride >= room:
            raise ValueError(
                f"a question of {question_tokens} tokens leaves no room for a {doc_stride}-token doc_stride within "
                f"max_seq_len {max_seq_len}: lower doc_stride or max_question_len, or raise max_seq_len"
            )
        pairs.append((question, text))
    encodings = tokenizer.encode(pairs, max_length=max_seq_len, stride=doc_stride, strategy="only_second")
    return [[Row(window.ids, window) for window in windows(encoding)] for encoding in encodings]


def _shorten(question: str, max_tokens: int, context: Context) -> str:
    """The question cut after `max_tokens` tokens (transformers' fast path ignores max_question_len)."""
    encoding = context.tokenizer.encode([question], add_special_tokens=False)[0]
    if len(encoding.ids) <= max_tokens:
        return question
    return question[: encoding.offsets[max_tokens - 1][1]]


def decode(item: tuple[str, str], rows: list[Row], outputs: list[dict], context: Context, options: dict):
    _, text = item
    top_k, max_answer_len = options["top_k"], options["max_answer_len"]
    candidates = top_k * 2 + 10 if options["align_to_words"] else top_k  # word alignment may merge some
    null_score = 1_000_000.0
    answers: list[dict] = []
    for row, output in zip(rows, outputs):
        encoding = row.data
        answerable = np.array([sequence == 1 for sequence in encoding.sequence_ids])
        answerable |= np.array(encoding.ids) == context.tokenizer.cls_token_id
        start = softmax(np.where(answerable, output["start_logits"], NO_ANSWER_LOGIT).astype(np.float32))
        end = softmax(np.where(answerable, output["end_logits"], NO_ANSWER_LOGIT).astype(np.float32))
        if options["handle_impossible_answer"]:
            null_score = min(null_score, float(start[0] * end[0]))
        start[0] = end[0] = 0.0
        for first, last, score in _best_spans(start, end, candidates, max_answer_len, answerable):
            begin, finish = _char_span(encoding, first, last, options["align_to_words"])
            answer = text[begin:finish]
            same = next((found for found in answers if found["answer"].lower() == answer.lower()), None)
            if same:
                same["score"] += score
            else:
                answers.append({"score": score, "start": begin, "end": finish, "answer": answer})
    if options["handle_impossible_answer"]:
        answers.append({"score": null_score, "start": 0, "end": 0, "answer": ""})
    answers = sorted(answers, key=lambda answer: answer["score"], reverse=True)[:top_k]
    return answers[0] if len(answers) == 1 else answers


def _best_spans(start: np.ndarray, end: np.ndarray, count: int, max_answer_len: int, answerable: np.ndarray):
    """The `count` best (start, end, score) spans, end >= start and at most max_answer_len tokens long;
    spans touching a token outside the context are then dropped."""
    scores = np.tril(np.triu(np.outer(start, end)), max_answer_len - 1)
    flat = scores.ravel()
    if count == 1:
        best = np.array([np.argmax(flat)])
    elif len(flat) < count:
        best = np.argsort(-flat)
    else:
        top = np.argpartition(-flat, count)[:count]
        best = top[np.argsort(-flat[top])]
    firsts, lasts = np.unravel_index(best, scores.shape)
    keep = answerable[firsts] & answerable[lasts]
    # the score of the masked matrix: 0 for a span cut out (end before start, or too long), as transformers
    return [(int(f), int(l), float(scores[f, l])) for f, l in zip(firsts[keep], lasts[keep])]


def _char_span(encoding, first: int, last: int, align_to_words: bool) -> tuple[int, int]:
    """Character offsets in the context of tokens first..last, widened to whole words if asked."""
    if align_to_words:
        first_word, last_word = encoding.token_to_word(first), encoding.token_to_word(last)
        if first_word is not None and last_word is not None:
            begin = encoding.word_to_chars(first_word, sequence_index=1)
            finish = encoding.word_to_chars(last_word, sequence_index=1)
            if begin is not None and finish is not None:
                return begin[0], finish[1]
    return encoding.offsets[first][0], encoding.offsets[last][1]


def check_options(options: dict, context: Context) -> None:
    check_flags(options, "handle_impossible_answer", "align_to_words")
    for name in ("top_k", "max_answer_len", "max_question_len"):
        value = options[name]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    max_seq_len, doc_stride = limits(options, context)
    if not isinstance(max_seq_len, int) or not 0 < max_seq_len <= context.tokenizer.model_max_length:
        raise ValueError(f"max_seq_len must be from 1 to the model's {context.tokenizer.model_max_length}, got {max_seq_len!r}")
    if not isinstance(doc_stride, int) or not 0 <= doc_stride < max_seq_len:
        raise ValueError(f"doc_stride must be from 0 to max_seq_len - 1 ({max_seq_len - 1}), got {doc_stride!r}")


HANDLER = TaskHandler(
    parse=parse,
    encode=encode,
    decode=decode,
    options={
        "top_k": 1,
        "doc_stride": None,
        "max_answer_len": 15,
        "max_seq_len": None,
        "max_question_len": 64,
        "handle_impossible_answer": False,
        "align_to_words": True,
    },
    input_keywords=("question", "context"),
    check_options=check_options,
)
