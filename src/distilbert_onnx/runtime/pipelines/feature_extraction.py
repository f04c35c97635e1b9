"""feature-extraction: token vectors, or sentence vectors with `pooling`.

Without pooling a text gives its last hidden states as transformers does: nested lists of shape
[1, tokens, dim] ([CLS] and [SEP] included). `pooling="mean"` averages the vectors of the text's
tokens, `pooling="cls"` takes the first one; `normalize=True` scales each vector to unit length.
`return_tensors=True` gives numpy arrays instead of lists.
"""

from __future__ import annotations

import numpy as np

from .base import Context, Row, TaskHandler, check_flags, check_text, texts_or_list

POOLINGS = ("mean", "cls")


def parse(inputs, keywords: dict, options: dict) -> tuple[list, bool]:
    return texts_or_list(inputs, check_text)


def encode(items: list[str], context: Context, options: dict) -> list[list[Row]]:
    return [[Row(encoding.ids)] for encoding in context.tokenizer.encode(items)]


def decode(text: str, rows: list[Row], outputs: list[dict], context: Context, options: dict):
    hidden = outputs[0]["last_hidden_state"].astype(np.float32)
    if options["pooling"] == "mean":
        vectors = hidden.mean(axis=0)
    elif options["pooling"] == "cls":
        vectors = hidden[0]
    else:
        vectors = hidden[None]  # [1, tokens, dim], as transformers
    if options["normalize"]:
        vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)
    return vectors if options["return_tensors"] else vectors.tolist()


def check_options(options: dict, context: Context) -> None:
    check_flags(options, "normalize", "return_tensors")
    if options["pooling"] is not None and options["pooling"] not in POOLINGS:
        raise ValueError(f"pooling must be None, 'mean' or 'cls', got {options['pooling']!r}")


HANDLER = TaskHandler(
    parse=parse,
    encode=encode,
    decode=decode,
    options={"pooling": None, "normalize": False, "return_tensors": False},
    check_options=check_options,
)
