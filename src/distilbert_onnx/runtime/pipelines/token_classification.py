"""token-classification: entities with transformers' keys, scores and character offsets.

`aggregation_strategy`:
  none     every token: {"entity", "score", "index", "word", "start", "end"}
  simple   adjacent tokens of the same entity type grouped: {"entity_group", "score", "word", "start", "end"}
  first / average / max   tokens first merged into words (the first token's label, the averaged
           scores, or the most confident token's label), then grouped as in simple
Labels in `ignore_labels` (default ["O"]) are dropped. Texts longer than the model are cut into
overlapping windows (`stride` tokens of overlap) and entities found twice in an overlap are merged:
the longer one wins, then the more confident one.
"""

from __future__ import annotations

import numpy as np

from ..tokenizer import windows
from .base import Context, Row, TaskHandler, check_text, softmax, texts_or_list

STRATEGIES = ("none", "simple", "first", "average", "max")
DEFAULT_STRIDE = 128


def parse(inputs, keywords: dict, options: dict) -> tuple[list, bool]:
    return texts_or_list(inputs, check_text)


def stride_for(options: dict, context: Context) -> int:
    """The overlap between windows: as given, else DEFAULT_STRIDE capped at a quarter window."""
    if options["stride"] is not None:
        return options["stride"]
    return min(DEFAULT_STRIDE, context.tokenizer.model_max_length // 4)


def encode(items: list[str], context: Context, options: dict) -> list[list[Row]]:
    stride = stride_for(options, context)
    step = context.tokenizer.model_max_length - context.tokenizer.count_special_tokens(pair=False) - stride
    rows = []
    for encoding in context.tokenizer.encode(items, stride=stride):
        # window k starts `step` content tokens after window k-1: its token i is token k*step+i of the text
        rows.append([Row(window.ids, (window, k * step)) for k, window in enumerate(windows(encoding))])
    return rows


def decode(text: str, rows: list[Row], outputs: list[dict], context: Context, options: dict) -> list[dict]:
    strategy = options["aggregation_strategy"]
    ignore = ["O"] if options["ignore_labels"] is None else list(options["ignore_labels"])
    entities = []
    for row, output in zip(rows, outputs):
        encoding, first_index = row.data
        scores = softmax(output["logits"].astype(np.float32))
        tokens = _tokens(text, encoding, scores, first_index, context)
        for entity in _aggregate(tokens, strategy, context):
            if entity.get("entity", entity.get("entity_group")) not in ignore:
                entities.append(entity)
    return _merge_overlaps(entities) if len(rows) > 1 else entities


def _tokens(text: str, encoding, scores: np.ndarray, first_index: int, context: Context) -> list[dict]:
    """One entry per non-special token: its text, scores, character span and whether it continues a word."""
    tokenizer = context.tokenizer
    subword_prefix = tokenizer.subword_prefix
    tokens = []
    for index, (token_id, (start, end), special) in enumerate(
        zip(encoding.ids, encoding.offsets, encoding.special_tokens_mask)
    ):
        if special:
            continue
        word = tokenizer.id_to_token(token_id)
        original = text[start:end]
        if subword_prefix:
            continues = len(word) != len(original)
        else:  # no word-aware model: a token not preceded by a space continues a word
            continues = start > 0 and " " not in text[start - 1 : start + 1]
        if token_id == tokenizer.unk_token_id:
            word, continues = original, False
        tokens.append({"word": word, "scores": scores[index], "start": start, "end": end,
                       "index": first_index + index, "continues": continues})
    return tokens


def _aggregate(tokens: list[dict], strategy: str, context: Context) -> list[dict]:
    labels = context.config.id2label
    if strategy in ("none", "simple"):
        entities = []
        for token in tokens:
            best = int(token["scores"].argmax())
            entities.append({"entity": labels[best], "score": float(token["scores"][best]), "index": token["index"],
                             "word": token["word"], "start": token["start"], "end": token["end"]})
        if strategy == "none":
            return entities
    else:
        entities = [_word_entity(word, strategy, context) for word in _words(tokens)]
    return _group(entities, context)


def _words(tokens: list[dict]) -> list[list[dict]]:
    words: list[list[dict]] = []
    for token in tokens:
        if words and token["continues"]:
            words[-1].append(token)
        else:
            words.append([token])
    return words


def _word_entity(tokens: list[dict], strategy: str, context: Context) -> dict:
    if strategy == "first":
        scores = tokens[0]["scores"]
    elif strategy == "max":
        scores = max(tokens, key=lambda token: token["scores"].max())["scores"]
    else:  # average
        scores = np.nanmean(np.stack([token["scores"] for token in tokens]), axis=0)
    best = int(scores.argmax())
    return {
        "entity": context.config.id2label[best],
        "score": float(scores[best]),
        "word": context.tokenizer.tokens_to_string([token["word"] for token in tokens]),
        "start": tokens[0]["start"],
        "end": tokens[-1]["end"],
    }


def _split_tag(label: str) -> tuple[str, str]:
    """('B' or 'I', type): B-/I- prefixes as in IOB tagging; a bare label continues its type."""
    if label.startswith(("B-", "I-")):
        return label[0], label[2:]
    return "I", label


def _group(entities: list[dict], context: Context) -> list[dict]:
    """Adjacent entities of one type form a group, unless the next one begins a new entity (B-)."""
    groups: list[list[dict]] = []
    for entity in entities:
        boundary, kind = _split_tag(entity["entity"])
        if groups and boundary != "B" and _split_tag(groups[-1][-1]["entity"])[1] == kind:
            groups[-1].append(entity)
        else:
            groups.append([entity])
    return [
        {
            "entity_group": group[0]["entity"].split("-", 1)[-1],
            "score": float(np.nanmean([entity["score"] for entity in group])),
            "word": context.tokenizer.tokens_to_string([entity["word"] for entity in group]),
            "start": group[0]["start"],
            "end": group[-1]["end"],
        }
        for group in groups
    ]


def _merge_overlaps(entities: list[dict]) -> list[dict]:
    """Entities from overlapping windows: of those that overlap, keep the longest, then the surest."""
    merged: list[dict] = []
    for entity in sorted(entities, key=lambda entity: entity["start"]):
        if merged and merged[-1]["start"] <= entity["start"] < merged[-1]["end"]:
            kept = merged[-1]
            longer = entity["end"] - entity["start"] > kept["end"] - kept["start"]
            same = entity["end"] - entity["start"] == kept["end"] - kept["start"]
            if longer or (same and entity["score"] > kept["score"]):
                merged[-1] = entity
        else:
            merged.append(entity)
    return merged


def check_options(options: dict, context: Context) -> None:
    strategy = options["aggregation_strategy"]
    if not isinstance(strategy, str) or strategy.lower() not in STRATEGIES:
        raise ValueError(f"aggregation_strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    options["aggregation_strategy"] = strategy.lower()
    stride = options["stride"]
    room = context.tokenizer.model_max_length - context.tokenizer.count_special_tokens(pair=False)
    if stride is not None and (not isinstance(stride, int) or isinstance(stride, bool) or not 0 <= stride < room):
        raise ValueError(f"stride must be an integer from 0 to {room - 1} (the window holds {room} tokens), got {stride!r}")
    ignore = options["ignore_labels"]
    if ignore is not None and (isinstance(ignore, str) or not all(isinstance(label, str) for label in ignore)):
        raise ValueError("ignore_labels must be a list of label names")


HANDLER = TaskHandler(
    parse=parse,
    encode=encode,
    decode=decode,
    options={"aggregation_strategy": "none", "ignore_labels": None, "stride": None},
    check_options=check_options,
)
