"""multiple-choice: how likely each choice is to follow the prompt.

`pipe(prompt, choices=[...])` gives [{"choice", "score"}] in the order the choices were given, the
scores a softmax over the choices. A list of {"prompt": ..., "choices": [...]} dicts gives a list of
those lists. Each (prompt, choice) pair is encoded like a text pair and truncated to the model's
maximum length.
"""

from __future__ import annotations

import numpy as np

from .base import Context, Row, TaskHandler, check_text, softmax


def parse(inputs, keywords: dict, options: dict) -> tuple[list, bool]:
    if "choices" in keywords:
        if isinstance(inputs, (list, tuple)):
            raise TypeError("choices=... goes with a single prompt; for several, pass [{'prompt': ..., 'choices': [...]}, ...]")
        return [_item(inputs, keywords["choices"], "the input")], True
    if isinstance(inputs, dict):
        return [_from_dict(inputs, "the input")], True
    if isinstance(inputs, (list, tuple)):
        return [_from_dict(item, f"item {i} of the input list") for i, item in enumerate(inputs)], False
    raise TypeError("multiple-choice takes pipe(prompt, choices=[...]) or [{'prompt': ..., 'choices': [...]}, ...]")


def _from_dict(item, what: str) -> tuple[str, list[str]]:
    if not isinstance(item, dict) or "prompt" not in item or "choices" not in item:
        raise TypeError(f"{what} must be a {{'prompt': ..., 'choices': [...]}} dict")
    return _item(item["prompt"], item["choices"], what)


def _item(prompt, choices, what: str) -> tuple[str, list[str]]:
    prompt = check_text(prompt, f"{what}: prompt")
    if isinstance(choices, str) or not isinstance(choices, (list, tuple)) or not choices:
        raise ValueError(f"{what}: choices must be a non-empty list of strings")
    return prompt, [check_text(choice, f"{what}: choice {i}") for i, choice in enumerate(choices)]


def encode(items: list[tuple[str, list[str]]], context: Context, options: dict) -> list[list[Row]]:
    rows = []
    for prompt, choices in items:
        encodings = context.tokenizer.encode([(prompt, choice) for choice in choices])
        rows.append([Row([encoding.ids for encoding in encodings])])
    return rows


def decode(item: tuple[str, list[str]], rows: list[Row], outputs: list[dict], context: Context, options: dict):
    _, choices = item
    scores = softmax(outputs[0]["logits"].astype(np.float32))
    return [{"choice": choice, "score": float(score)} for choice, score in zip(choices, scores)]


HANDLER = TaskHandler(parse=parse, encode=encode, decode=decode, input_keywords=("choices",))
