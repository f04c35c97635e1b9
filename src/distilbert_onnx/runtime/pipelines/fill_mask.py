"""fill-mask: the likeliest tokens for each [MASK], as transformers gives them.

Each proposal is {"score", "token", "token_str", "sequence"}: the probability (softmax over the
vocabulary), the token id, its text, and the input with the mask filled in. One mask gives a list of
`top_k` proposals; several masks give one such list per mask. `targets` restricts the proposals to
the given words (scores stay the full-vocabulary probabilities); a word that is not a single token
is replaced by its first token.
"""

from __future__ import annotations

import logging

import numpy as np

from .base import Context, Row, TaskHandler, check_text, softmax, texts_or_list

logger = logging.getLogger("distilbert_onnx")


def parse(inputs, keywords: dict, options: dict) -> tuple[list, bool]:
    return texts_or_list(inputs, check_text)


def encode(items: list[str], context: Context, options: dict) -> list[list[Row]]:
    tokenizer = context.tokenizer
    rows = []
    for text, encoding in zip(items, tokenizer.encode(items)):
        if tokenizer.mask_token_id not in encoding.ids:
            if tokenizer.mask_token in text:
                raise ValueError(
                    f"the {tokenizer.mask_token} token in {_preview(text)} lies beyond the model's maximum length "
                    f"({tokenizer.model_max_length} tokens): shorten the text before the mask"
                )
            raise ValueError(f"no {tokenizer.mask_token} token in {_preview(text)}: fill-mask needs at least one")
        rows.append([Row(encoding.ids)])
    return rows


def decode(text: str, rows: list[Row], outputs: list[dict], context: Context, options: dict):
    tokenizer = context.tokenizer
    ids = np.asarray(rows[0].ids)
    masks = np.flatnonzero(ids == tokenizer.mask_token_id)
    targets = options["_target_ids"]
    top_k = min(options["top_k"], len(targets)) if targets is not None else options["top_k"]
    proposals = []
    for position in masks:
        probabilities = softmax(outputs[0]["logits"][position].astype(np.float32))
        candidates = targets if targets is not None else np.arange(len(probabilities))
        chosen = candidates[np.argsort(-probabilities[candidates], kind="stable")[:top_k]]
        row = []
        for token in chosen:
            filled = ids.copy()
            filled[position] = token
            filled = filled[filled != tokenizer.pad_token_id]
            row.append({
                "score": float(probabilities[token]),
                "token": int(token),
                "token_str": tokenizer.decode([int(token)], skip_special_tokens=False),
                "sequence": tokenizer.decode(filled.tolist(), skip_special_tokens=len(masks) == 1),
            })
        proposals.append(row)
    return proposals[0] if len(masks) == 1 else proposals


def check_options(options: dict, context: Context) -> None:
    top_k = options["top_k"]
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
    if context.tokenizer.mask_token_id is None:
        raise ValueError(f"the tokenizer has no mask token ({context.tokenizer.mask_token}): fill-mask needs one")
    options["_target_ids"] = None if options["targets"] is None else _target_ids(options["targets"], context)


def _target_ids(targets, context: Context) -> np.ndarray:
    tokenizer = context.tokenizer
    if not isinstance(targets, (str, list, tuple)):
        raise TypeError(f"targets must be a word or a list of words, got a {type(targets).__name__}")
    targets = [targets] if isinstance(targets, str) else list(targets)
    ids = set()
    for target in targets:
        target = check_text(target, "a target")
        token = tokenizer.token_to_id(target)
        if token is None:
            pieces = tokenizer.encode([target], add_special_tokens=False)[0].ids
            if not pieces:
                logger.warning("target %r is not in the vocabulary and has no tokens: ignored", target)
                continue
            token = pieces[0]
            logger.warning("target %r is not a single token: using %r", target, tokenizer.id_to_token(token))
        ids.add(token)
    if not ids:
        raise ValueError("none of the targets is in the vocabulary: give at least one usable target")
    return np.array(sorted(ids))


def _preview(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


HANDLER = TaskHandler(
    parse=parse,
    encode=encode,
    decode=decode,
    options={"top_k": 5, "targets": None},
    check_options=check_options,
)
