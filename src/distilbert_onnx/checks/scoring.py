"""Each metric family (TaskSpec.metric) as data: how a raw label becomes a gold label the model can be
held to, which pipeline call makes the predictions, and which figures of metrics.py score them.

Label formats (a value may also be a JSON list or object written as text, for CSV):
  classes      a label name or id; multi-label (problem_type multi_label_classification): a list of them
  entities     the word tags (names or ids), a list or one whitespace-separated string, one per word of
               the text (a list of words, or a string split on whitespace); each word is predicted by
               its first sub-token
  answers      a list of answer texts, SQuAD's {"text": [...], "answer_start": [...]}, or one text;
               an empty list (or only empty texts) means no answer, and then the pipeline may answer
               nothing (handle_impossible_answer)
  masked-word  the word under the [MASK] (a list of words for several masks), one token of the vocabulary
  choice       the index of the right choice, or its text
  similarity   with a text_pair column: a gold similarity score (a number); otherwise a label per text
               (1-NN accuracy), or no label column at all (agreement with the reference's vectors)
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DataError
from . import metrics
from .labelled import LabelledRows
from .metrics import TaskScore


@dataclass(frozen=True)
class Outcome:
    """A pipeline's predictions on the rows: one comparable value per row (what `changed` compares),
    what the figures are computed from, and sentence vectors where the task gives them."""

    predictions: list
    scored: Any
    vectors: np.ndarray | None = None


@dataclass(frozen=True)
class Family:
    """The parts of evaluation that differ between metric families."""

    # (raw label, record, context, labelled rows) -> gold label; a ValueError says what is wrong
    gold: Callable[[Any, dict, Any, LabelledRows], Any]
    # (the rows' results, each a list of its inputs' results; labelled rows; gold labels; context) -> Outcome
    outcome: Callable[[list, LabelledRows, list, Any], Outcome]
    # (gold labels, outcome, the reference's outcome or None, context, labelled rows) -> TaskScore
    score: Callable[[list, Outcome, Outcome | None, Any, LabelledRows], TaskScore]
    # (labelled rows) -> each row's pipeline inputs (one, or a sentence pair's two texts)
    inputs: Callable[[LabelledRows], list[list]] = lambda labelled: [
        [labelled.spec.input_from_record(record)] for record in labelled.records]
    # (labelled rows, gold labels, context) -> the pipeline's options
    options: Callable[[LabelledRows, list, Any], dict] = lambda labelled, gold, context: {}
    # (context, labelled rows, gold labels) -> None: checks of the whole data set (DataError)
    check: Callable[[Any, LabelledRows, list], None] = lambda context, labelled, gold: None


def predict(family: Family, pipe, labelled: LabelledRows, gold: list, batch_size: int) -> Outcome:
    """The pipeline run on every row, its results made into an Outcome. A row the pipeline refuses
    is a DataError naming it (found by preparing the rows one by one, without the model)."""
    inputs = family.inputs(labelled)
    options = family.options(labelled, gold, pipe.context)
    try:
        flat = pipe([item for row in inputs for item in row], batch_size=batch_size, **options)
    except (TypeError, ValueError) as exc:
        for index, row in enumerate(inputs):
            try:
                pipe.prepare(row, **options)
            except (TypeError, ValueError) as refused:
                raise DataError(f"{labelled.where(index)}: the model's pipeline refused it: {refused}") from None
        raise DataError(f"{labelled.path.name}: the model's pipeline refused the rows: {exc}") from None
    results, position = [], 0
    for row in inputs:
        results.append(flat[position : position + len(row)])
        position += len(row)
    return family.outcome(results, labelled, gold, pipe.context)


def gold_labels(family: Family, labelled: LabelledRows, context) -> list:
    """Every row's gold label, or a DataError naming the first bad row and the label column."""
    gold = []
    for index, (value, record) in enumerate(zip(labelled.labels, labelled.records)):
        try:
            gold.append(family.gold(_decoded(value), record, context, labelled))
        except (TypeError, ValueError) as exc:
            raise DataError(f"{labelled.where(index, labelled.label_column)}: {exc}") from None
    family.check(context, labelled, gold)
    return gold


def _decoded(value):
    """A list or object written as JSON text (a CSV cell) as the list or object; anything else as is."""
    if isinstance(value, str) and value.lstrip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


# --- classes --------------------------------------------------------------------------------------


def _label_names(context) -> str:
    names = list(context.config.id2label.values())
    return ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")


def label_id(value, context) -> int:
    """A label name or id of the model as its id; a ValueError naming the model's labels otherwise."""
    labels = context.config.id2label
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if value in labels:
            return value
        raise ValueError(f"label id {value} is out of range: this model's ids are 0-{len(labels) - 1} ({_label_names(context)})")
    if isinstance(value, str):
        for index, name in labels.items():
            if name == value:
                return index
        raise ValueError(f"{value!r} is not a label of this model ({_label_names(context)}); give a label name or an id "
                         f"0-{len(labels) - 1}")
    raise ValueError(f"a {type(value).__name__} label: give a label name or an id")


def _multi_label(context) -> bool:
    return context.config.problem_type == "multi_label_classification"


def _class_gold(value, record, context, labelled):
    if context.config.problem_type == "regression":
        raise ValueError("this model is a regression head (problem_type regression): evaluate scores classifiers")
    if _multi_label(context):
        return frozenset(label_id(item, context) for item in (value if isinstance(value, list) else [value]))
    return label_id(value, context)


def _class_options(labelled, gold, context) -> dict:
    return {"top_k": None, "function_to_apply": "sigmoid"} if _multi_label(context) else {}


def _class_outcome(results, labelled, gold, context) -> Outcome:
    ids = {name: index for index, name in reversed(context.config.id2label.items())}
    if _multi_label(context):
        predicted = [frozenset(ids[entry["label"]] for entry in result if entry["score"] > 0.5) for (result,) in results]
    else:
        predicted = [ids[result["label"]] for (result,) in results]
    return Outcome(predicted, predicted)


def _class_score(gold, outcome, reference, context, labelled) -> TaskScore:
    if _multi_label(context):
        count = context.config.num_labels
        hot = lambda sets: np.array([[index in labels for index in range(count)] for labels in sets], dtype=bool)  # noqa: E731
        return TaskScore("accuracy", metrics.multilabel_figures(hot(gold), hot(outcome.scored)), len(gold))
    return TaskScore("accuracy", metrics.class_figures(gold, outcome.scored), len(gold))


# --- entities -------------------------------------------------------------------------------------

_WORD = re.compile(r"\S+")


def words_of(record: dict) -> tuple[str, list[tuple[int, int]]]:
    """(the text the model reads, each word's character span in it): a list of words is joined by
    spaces, a string is split on whitespace."""
    value = record["text"]
    text = " ".join(value) if isinstance(value, list) else value
    if isinstance(value, list):
        spans, start = [], 0
        for word in value:
            spans.append((start, start + len(word)))
            start += len(word) + 1
        return text, spans
    return text, [match.span() for match in _WORD.finditer(text)]


def _entity_check(context, labelled, gold) -> None:
    for name in context.config.id2label.values():
        try:
            metrics.split_tag(name)
        except ValueError as exc:
            raise DataError(f"this model's labels are not IOB tags: {exc}; evaluate scores entities over IOB tags") from None


def _entity_gold(value, record, context, labelled):
    tags = value.split() if isinstance(value, str) else value
    if not isinstance(tags, list):
        raise ValueError(f"a {type(value).__name__} value: give the word tags as a list or a whitespace-separated string")
    names = [context.config.id2label[label_id(tag, context)] for tag in tags]
    _, spans = words_of(record)
    if len(names) != len(spans):
        raise ValueError(f"{len(names)} tags for {len(spans)} words: give one tag per word")
    return names


def _entity_inputs(labelled) -> list[list]:
    return [[words_of(record)[0]] for record in labelled.records]


def _entity_outcome(results, labelled, gold, context) -> Outcome:
    predicted = [tuple(_word_tags(tokens, words_of(record)[1])) for (tokens,), record in zip(results, labelled.records)]
    return Outcome(predicted, [list(tags) for tags in predicted])


def _word_tags(tokens: list[dict], spans: list[tuple[int, int]]) -> list[str]:
    """Each word's tag: that of its first sub-token ("O" for a word no token starts in)."""
    starts = sorted((token["start"], token["entity"]) for token in tokens)
    positions = np.array([start for start, _ in starts])
    tags = []
    for begin, end in spans:
        first = int(np.searchsorted(positions, begin)) if len(positions) else 0
        tags.append(starts[first][1] if first < len(starts) and starts[first][0] < end else "O")
    return tags


def _entity_score(gold, outcome, reference, context, labelled) -> TaskScore:
    return TaskScore("f1", metrics.entity_figures(gold, outcome.scored), len(gold))


# --- answers --------------------------------------------------------------------------------------


def _answer_gold(value, record, context, labelled):
    if isinstance(value, dict):
        if "text" not in value:
            raise ValueError('an answers object needs "text" (a list of answers), as in SQuAD')
        value = value["text"]
    answers = [value] if isinstance(value, str) else value
    if not isinstance(answers, list) or not all(isinstance(answer, str) for answer in answers):
        raise ValueError("give the answers as a list of texts, SQuAD's {\"text\": [...]}, or one text")
    return answers


def _answer_options(labelled, gold, context) -> dict:
    return {"handle_impossible_answer": any(metrics.gold_answers(answers) == [""] for answers in gold)}


def _answer_outcome(results, labelled, gold, context) -> Outcome:
    answers = [result["answer"] for (result,) in results]
    return Outcome(answers, answers)


def _answer_score(gold, outcome, reference, context, labelled) -> TaskScore:
    return TaskScore("f1", metrics.answer_figures(gold, outcome.scored), len(gold))


# --- masked words ---------------------------------------------------------------------------------


def _masked_gold(value, record, context, labelled):
    tokenizer = context.tokenizer
    words = [value] if isinstance(value, str) else value
    if not isinstance(words, list) or not all(isinstance(word, str) for word in words):
        raise ValueError("give the masked word (a list of words for several masks)")
    masks = record["text"].count(tokenizer.mask_token)
    if masks != len(words):
        raise ValueError(f"{len(words)} word(s) for {masks} {tokenizer.mask_token} token(s) in the text: give one per mask")
    ids = []
    for word in words:
        pieces = tokenizer.encode([word], add_special_tokens=False)[0].ids
        if len(pieces) != 1:
            raise ValueError(f"{word!r} is {len(pieces)} tokens of this model's vocabulary: a mask stands for one token")
        ids.append(pieces[0])
    return tuple(ids)


def _masked_outcome(results, labelled, gold, context) -> Outcome:
    ranked = []
    for index, ((result,), words) in enumerate(zip(results, gold)):
        per_mask = result if result and isinstance(result[0], list) else [result]
        if len(per_mask) != len(words):
            raise DataError(f"{labelled.where(index, labelled.fields['text'])}: only {len(per_mask)} of its "
                            f"{len(words)} masks fit in the model's maximum length: shorten the text")
        ranked.append([[proposal["token"] for proposal in proposals] for proposals in per_mask])
    return Outcome([tuple(mask[0] for mask in row) for row in ranked], ranked)


def _masked_score(gold, outcome, reference, context, labelled) -> TaskScore:
    flat_gold = [token for words in gold for token in words]
    flat_ranked = [mask for row in outcome.scored for mask in row]
    return TaskScore("top1_accuracy", metrics.top_k_figures(flat_gold, flat_ranked), len(gold))


# --- choices --------------------------------------------------------------------------------------


def _choice_gold(value, record, context, labelled):
    choices = record["choices"]
    if isinstance(value, str):
        if value not in choices:
            raise ValueError(f"{value!r} is not one of the row's choices: give the right choice's text or index")
        return choices.index(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"a {type(value).__name__} label: give the right choice's index or text")
    if not 0 <= value < len(choices):
        raise ValueError(f"choice index {value} is out of range: the row has {len(choices)} choices (0-{len(choices) - 1})")
    return value


def _choice_outcome(results, labelled, gold, context) -> Outcome:
    chosen = [int(np.argmax([entry["score"] for entry in result])) for (result,) in results]
    return Outcome(chosen, chosen)


def _choice_score(gold, outcome, reference, context, labelled) -> TaskScore:
    return TaskScore("accuracy", metrics.choice_figures(gold, outcome.scored), len(gold))


# --- sentence vectors -----------------------------------------------------------------------------


def similarity_mode(labelled: LabelledRows) -> str:
    """"pairs" (text pairs with gold scores), "labels" (a label per text) or "agreement" (no labels)."""
    if "text_pair" in labelled.fields:
        return "pairs"
    return "labels" if labelled.label_column else "agreement"


def _similarity_gold(value, record, context, labelled):
    mode = similarity_mode(labelled)
    if mode == "pairs":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"a {type(value).__name__} value: a sentence pair's gold score is a number")
        return float(value)
    if mode == "labels" and not isinstance(value, (str, int)):
        raise ValueError(f"a {type(value).__name__} label: give a class name or id per text")
    return value


def _similarity_check(context, labelled, gold) -> None:
    mode = similarity_mode(labelled)
    if mode == "pairs" and labelled.label_column is None:
        raise DataError("sentence pairs need their gold similarity scores: name the column with --label-column")
    if mode != "pairs" and labelled.rows < 2:
        raise DataError(f"{labelled.path.name} has one row: nearest neighbours need at least two")
    if mode == "pairs" and len(set(gold)) < 2:
        raise DataError(f"{labelled.path.name}: every gold score is the same, so no correlation can be measured")


def _similarity_inputs(labelled) -> list[list]:
    pairs = similarity_mode(labelled) == "pairs"
    return [[record["text"], record["text_pair"]] if pairs else [record["text"]] for record in labelled.records]


def _similarity_options(labelled, gold, context) -> dict:
    return {"pooling": "mean", "normalize": True, "return_tensors": True}


def _similarity_outcome(results, labelled, gold, context) -> Outcome:
    vectors = np.stack([row[0] for row in results])
    cosines = None
    if similarity_mode(labelled) == "pairs":
        pairs = np.stack([row[1] for row in results])
        cosines = (metrics.unit(vectors) * metrics.unit(pairs)).sum(axis=1)
    nearest = metrics.nearest_other(vectors).tolist() if labelled.rows > 1 else [0]
    return Outcome(nearest, cosines, vectors)


def _similarity_score(gold, outcome, reference, context, labelled) -> TaskScore:
    mode = similarity_mode(labelled)
    if mode == "pairs":
        return TaskScore("spearman", metrics.similarity_figures(outcome.scored, np.array(gold)), len(gold))
    if mode == "labels":
        return TaskScore("knn_accuracy", metrics.knn_figures(outcome.vectors, gold), len(gold))
    against = reference.vectors if reference is not None else outcome.vectors
    return TaskScore("nn_agreement", metrics.agreement_figures(outcome.vectors, against), len(gold))


FAMILIES: dict[str, Family] = {
    "classes": Family(_class_gold, _class_outcome, _class_score, options=_class_options),
    "entities": Family(_entity_gold, _entity_outcome, _entity_score, inputs=_entity_inputs, check=_entity_check,
                       options=lambda *_: {"aggregation_strategy": "none", "ignore_labels": []}),
    "answers": Family(_answer_gold, _answer_outcome, _answer_score, options=_answer_options),
    "masked-word": Family(_masked_gold, _masked_outcome, _masked_score, options=lambda *_: {"top_k": 5}),
    "choice": Family(_choice_gold, _choice_outcome, _choice_score),
    "similarity": Family(_similarity_gold, _similarity_outcome, _similarity_score, inputs=_similarity_inputs,
                         options=_similarity_options, check=_similarity_check),
}
