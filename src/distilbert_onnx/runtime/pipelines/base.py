"""The pipeline loop shared by every task: check the input, tokenize, batch, run, post-process.

A task is a TaskHandler: a table of four functions (parse the call's inputs into items, encode items
into model rows, decode a row's outputs into the task's result) plus its options and their defaults.
The Pipeline object holds no state that changes during a call, so one object may serve many threads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...config import DistilBertConfig
from ...tasks import TaskSpec
from ...errors import positive_int
from ..batching import DEFAULT_BATCH_SIZE, DEFAULT_MAX_TOKENS, chunks, map_batches, pad
from ..session import OnnxModel
from ..tokenizer import TextTokenizer

# Items read ahead of the model when streaming: enough to sort into well-filled batches.
BATCHES_PER_CHUNK = 8


@dataclass
class Context:
    """What post-processing needs besides the outputs."""

    spec: TaskSpec
    config: DistilBertConfig
    tokenizer: TextTokenizer


@dataclass
class Row:
    """One model input row: token ids (multiple choice: one list per choice) and the task's data."""

    ids: Sequence[int] | Sequence[Sequence[int]]
    data: Any = None

    @property
    def length(self) -> int:
        """Tokens this row occupies in a padded batch."""
        if self.ids and not isinstance(self.ids[0], int):
            return len(self.ids) * max(len(choice) for choice in self.ids)
        return len(self.ids)


@dataclass
class Prepared:
    """A call's inputs, checked and tokenized: its items, each item's rows, the options, and whether
    the call returns one result rather than a list."""

    items: list
    rows: list[list[Row]]
    options: dict
    single: bool

    @property
    def flat_rows(self) -> list[Row]:
        """Every row of every item, in order: what the model runs."""
        return [row for item_rows in self.rows for row in item_rows]


@dataclass(frozen=True)
class TaskHandler:
    """The task-specific parts of a pipeline."""

    # (inputs, keyword inputs, options) -> (items, whether to return the single result unwrapped)
    parse: Callable[[Any, dict, dict], tuple[list, bool]]
    # (items, context, options) -> the rows of each item
    encode: Callable[[list, Context, dict], list[list[Row]]]
    # (item, its rows, their outputs, context, options) -> the item's result
    decode: Callable[[Any, list[Row], list[dict[str, np.ndarray]], Context, dict], Any]
    options: dict[str, Any] = field(default_factory=dict)
    input_keywords: tuple[str, ...] = ()
    check_options: Callable[[dict, Context], None] = lambda options, context: None


class Pipeline:
    """A task on an ONNX graph: call it with text, get what transformers' pipeline gives."""

    def __init__(
        self,
        handler: TaskHandler,
        model: OnnxModel,
        context: Context,
        folder: Path,
        variant: str,
        max_tokens: int = DEFAULT_MAX_TOKENS,
    ):
        self.handler = handler
        self.model = model
        self.context = context
        self.folder = folder
        self.variant = variant
        self.max_tokens = max_tokens

    @property
    def task(self) -> str:
        return self.context.spec.name

    @property
    def device(self) -> str:
        return self.model.device

    @property
    def backend(self) -> str:
        """The runtime that runs the model: onnxruntime or openvino."""
        return self.model.backend

    @property
    def precision(self) -> str:
        """What the model computes in: the variant's precision, and for OpenVINO the inference
        precision of its ops that are not int8 (e.g. "bf16", "int8+f32")."""
        return self.model.precision

    def __repr__(self) -> str:
        return (f"<Pipeline {self.task} {self.folder} variant={self.variant} backend={self.backend} "
                f"precision={self.precision} device={self.device}>")

    def __call__(self, inputs: Any = None, /, *, batch_size: int = DEFAULT_BATCH_SIZE, **kwargs: Any) -> Any:
        """Run the task. A single input gives one result, a list gives a list in the same order,
        and an iterator gives an iterator that consumes its input lazily."""
        positive_int("batch_size", batch_size)
        if _is_stream(inputs):
            self._keyword_inputs(kwargs)
            return self._stream(inputs, batch_size, self._options(kwargs), parse=True)
        items, single, options = self._parse(inputs, kwargs)
        results = list(self._stream(items, batch_size, options))
        return results[0] if single else results

    # --- the staged interface: prepare -> run_rows -> finish is exactly one call of the pipeline ----

    def prepare(self, inputs: Any = None, /, **kwargs: Any) -> Prepared:
        """Check and tokenize a call's inputs and options (as `pipe(inputs, **kwargs)` takes them).

        Bad inputs or options raise TypeError / ValueError here, before any model work.
        """
        items, single, options = self._parse(inputs, kwargs)
        return self._encode(items, options, single)

    def run_rows(self, rows: Sequence[Row], batch_size: int = DEFAULT_BATCH_SIZE, max_tokens: int | None = None,
                 min_fill: float = 0.0) -> list[dict[str, np.ndarray]]:
        """The model's outputs for each row, in order: length-bucketed batches of at most
        `batch_size` rows and `max_tokens` padded tokens (the pipeline's cap by default), at least
        `min_fill` of them real tokens rather than padding (see plan_batches)."""
        positive_int("batch_size", batch_size)
        return map_batches(list(rows), [row.length for row in rows], self._run_rows, batch_size,
                           max_tokens or self.max_tokens, min_fill)

    def finish(self, prepared: Prepared, outputs: Sequence[dict[str, np.ndarray]]) -> Any:
        """What `pipe(...)` returns for the prepared call, given the outputs of its rows in order."""
        results, position = [], 0
        for item, item_rows in zip(prepared.items, prepared.rows):
            item_outputs = list(outputs[position : position + len(item_rows)])
            position += len(item_rows)
            results.append(self.handler.decode(item, item_rows, item_outputs, self.context, prepared.options))
        return results[0] if prepared.single else results

    def _parse(self, inputs: Any, kwargs: dict) -> tuple[list, bool, dict]:
        keyword_inputs = self._keyword_inputs(kwargs)
        options = self._options(kwargs)
        items, single = self.handler.parse(inputs, keyword_inputs, options)
        return items, single, options

    def _keyword_inputs(self, kwargs: dict) -> dict:
        """Inputs given by keyword (question=, context=, choices=), taken out of `kwargs`."""
        return {name: kwargs.pop(name) for name in self.handler.input_keywords if name in kwargs}

    def _encode(self, items: list, options: dict, single: bool) -> Prepared:
        return Prepared(items, self.handler.encode(items, self.context, options), options, single)

    def _options(self, given: dict) -> dict:
        unknown = sorted(set(given) - set(self.handler.options))
        if unknown:
            known = ", ".join(sorted(self.handler.options)) or "none"
            raise TypeError(f"{self.task} does not take {', '.join(unknown)} (its options: {known})")
        options = {**self.handler.options, **given}
        self.handler.check_options(options, self.context)
        return {**options, "_given": set(given)}

    def _stream(self, items: Iterable, batch_size: int, options: dict, parse: bool = False) -> Iterator:
        for chunk in chunks(items, batch_size * BATCHES_PER_CHUNK):
            if parse:
                chunk = [self._parse_streamed(item, options) for item in chunk]
            prepared = self._encode(chunk, options, single=False)
            yield from self.finish(prepared, self.run_rows(prepared.flat_rows, batch_size))

    def _parse_streamed(self, item: Any, options: dict) -> Any:
        """One element of an input iterator: one input, parsed as it would be passed alone (not a list)."""
        if isinstance(item, (list, tuple)):
            raise TypeError(f"an element of the input iterator is a {type(item).__name__}: each element must be one input")
        return self.handler.parse(item, {}, options)[0][0]

    def _run_rows(self, rows: list[Row]) -> list[dict[str, np.ndarray]]:
        """One padded batch through the model; each row gets its outputs without the padding."""
        spec = self.context.spec
        pad_id = self.context.tokenizer.pad_token_id
        if "num_choices" in spec.input_axes:
            return self._run_choices(rows, pad_id)
        input_ids, attention_mask = pad([row.ids for row in rows], pad_id)
        outputs = self.model.run({"input_ids": input_ids, "attention_mask": attention_mask})
        per_token = spec.per_token_outputs()
        return [
            {name: value[i, : len(row.ids)] if name in per_token else value[i] for name, value in outputs.items()}
            for i, row in enumerate(rows)
        ]

    def _run_choices(self, rows: list[Row], pad_id: int) -> list[dict[str, np.ndarray]]:
        """Multiple choice: rows with the same number of choices go through together."""
        results: list[dict | None] = [None] * len(rows)
        by_count: dict[int, list[int]] = {}
        for index, row in enumerate(rows):
            by_count.setdefault(len(row.ids), []).append(index)
        for count, indices in by_count.items():
            sequences = [choice for index in indices for choice in rows[index].ids]
            input_ids, attention_mask = pad(sequences, pad_id)
            shape = (len(indices), count, input_ids.shape[-1])
            outputs = self.model.run({"input_ids": input_ids.reshape(shape), "attention_mask": attention_mask.reshape(shape)})
            for position, index in enumerate(indices):
                results[index] = {name: value[position] for name, value in outputs.items()}
        return results  # type: ignore[return-value]


def _is_stream(inputs: Any) -> bool:
    """An iterator or generator (not a list, tuple, string or dict): results are streamed back."""
    return isinstance(inputs, Iterator)


# --- input checks shared by the tasks ---------------------------------------------------------


def check_text(value: Any, what: str = "input") -> str:
    """`value` if it is a string; a TypeError that says what it is otherwise."""
    if isinstance(value, str):
        return value
    if value is None:
        raise TypeError(f"{what} is None: expected a string")
    if isinstance(value, (bytes, bytearray)):
        raise TypeError(f"{what} is bytes: decode it to a string first (e.g. value.decode('utf-8'))")
    raise TypeError(f"{what} is a {type(value).__name__}: expected a string")


def texts_or_list(inputs: Any, item: Callable[[Any, str], Any]) -> tuple[list, bool]:
    """A single input or a list of them, each checked by `item(value, description)`."""
    if isinstance(inputs, (list, tuple)):
        return [item(value, f"item {index} of the input list") for index, value in enumerate(inputs)], False
    return [item(inputs, "the input")], True


def check_flags(options: dict, *names: str) -> None:
    """Options that are switches must be True or False."""
    for name in names:
        if not isinstance(options[name], bool):
            raise TypeError(f"{name} must be True or False, got {options[name]!r}")


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)


def plain(value: Any) -> Any:
    """A result as plain Python values (for JSON, tables): numpy arrays and scalars as lists and numbers."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value
