"""text-classification: one label and score per text or text pair, as transformers gives them.

Scores: softmax over the labels, sigmoid for a single label or `problem_type:
multi_label_classification`, the raw logit for `regression`; `function_to_apply` overrides. Without
`top_k` a text gives its best label ({"label", "score"}; a lone string gives that dict in a list, as
in transformers); with `top_k` (an int, or None for all) a list of labels by descending score.
"""

from __future__ import annotations

import numpy as np

from .base import Context, Row, TaskHandler, check_text, softmax, texts_or_list

FUNCTIONS = ("softmax", "sigmoid", "none")


def parse(inputs, keywords: dict, options: dict) -> tuple[list, bool]:
    items, single = texts_or_list(inputs, _text_or_pair)
    # transformers' quirk, kept for parity: a lone string without top_k gives its result in a list.
    if single and isinstance(inputs, str) and "top_k" not in options["_given"]:
        return items, False
    return items, single


def _text_or_pair(value, what: str):
    """A string, or a text pair given as {"text": ..., "text_pair": ...}."""
    if isinstance(value, dict):
        unknown = set(value) - {"text", "text_pair"}
        if "text" not in value or unknown:
            raise ValueError(f'{what} must be a string or {{"text": ..., "text_pair": ...}}, got keys {sorted(value)}')
        text = check_text(value["text"], f"{what}['text']")
        if value.get("text_pair") is None:
            return text
        return (text, check_text(value["text_pair"], f"{what}['text_pair']"))
    return check_text(value, what)


def encode(items: list, context: Context, options: dict) -> list[list[Row]]:
    return [[Row(encoding.ids)] for encoding in context.tokenizer.encode(items)]


def default_function(config) -> str:
    """How the logits become scores when not asked: none for regression, sigmoid for multi-label or a
    single label, else softmax (as transformers)."""
    if config.problem_type == "regression":
        return "none"
    if config.problem_type == "multi_label_classification" or config.num_labels == 1:
        return "sigmoid"
    return "softmax"


def decode(item, rows: list[Row], outputs: list[dict], context: Context, options: dict):
    logits = outputs[0]["logits"].astype(np.float32)
    function = options["function_to_apply"] or default_function(context.config)
    if function == "softmax":
        scores = softmax(logits)
    elif function == "sigmoid":
        scores = 1.0 / (1.0 + np.exp(-logits))
    else:
        scores = logits
    labels = context.config.id2label
    if "top_k" not in options["_given"]:
        best = int(scores.argmax())
        return {"label": labels[best], "score": float(scores[best])}
    ranked = sorted(({"label": labels[i], "score": float(s)} for i, s in enumerate(scores)),
                    key=lambda entry: entry["score"], reverse=True)
    return ranked if options["top_k"] is None else ranked[: options["top_k"]]


def check_options(options: dict, context: Context) -> None:
    function = options["function_to_apply"]
    if function is not None:
        if not isinstance(function, str) or function.lower() not in FUNCTIONS:
            raise ValueError(f"function_to_apply must be one of {', '.join(FUNCTIONS)}, got {function!r}")
        options["function_to_apply"] = function.lower()
    top_k = options["top_k"]
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
        raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}")


HANDLER = TaskHandler(
    parse=parse,
    encode=encode,
    decode=decode,
    options={"top_k": 1, "function_to_apply": None},
    check_options=check_options,
)
