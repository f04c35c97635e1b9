"""The task table: one frozen TaskSpec per DistilBERT head, its profile.

Everything that differs between heads lives here as data, so the exporter, the validator, the
optimizer, the runtime and every front end (the CLI, a server, a bulk job) read the same facts:
names, the architecture in config.json, the ONNX inputs and outputs and their dynamic axes, what one
input record holds, how made-up inputs of a given size look, how int8 fidelity is measured, and the
few graph facts the optimizer checks. Code outside this table and the heads' own pipeline handlers
asks the spec rather than comparing task names. No torch import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .config import DistilBertConfig
from .errors import TaskError

if TYPE_CHECKING:
    import numpy as np

INPUT_NAMES = ("input_ids", "attention_mask")

TOKEN_AXES = ("batch_size", "sequence_length")
CHOICE_AXES = ("batch_size", "num_choices", "sequence_length")
# Choices per prompt wherever a multiple-choice input is made up rather than given: the export's
# example input, calibration inputs, benchmark and timing inputs.
CHOICES = 4
# How fidelity compares a head's outputs with fp32's (graph/fidelity.py; targets.py bounds the figures):
#   "probabilities"  the probabilities of each text's classes, each choice set's choices, or each real
#                    token's labels / vocabulary (softmax; sigmoid for a multi-label problem_type):
#                    their largest change and the share of equal top-1 predictions;
#   "spans"          the best answer span: the share of equal spans, the change of its probability;
#   "mean-pooled"    last_hidden_state averaged over each text's real tokens (a sentence vector): cosine.
COMPARED_AS = ("probabilities", "spans", "mean-pooled")
# How `evaluate` scores a head's predictions on labelled rows (checks/metrics.py, checks/scoring.py):
#   "classes"      accuracy and macro F1 of the predicted class (multi-label by config problem_type)
#   "entities"     entity precision / recall / F1 over word-level IOB tags (seqeval's default mode)
#   "answers"      SQuAD exact match and F1 (several gold answers; no-answer rows as in SQuAD 2.0)
#   "masked-word"  top-1 and top-5 accuracy of the masked word
#   "choice"       accuracy of the chosen choice
#   "similarity"   sentence vectors: Spearman of cosine with gold scores, k-NN accuracy with labels,
#                  agreement with fp32 without labels
METRICS = ("classes", "entities", "answers", "masked-word", "choice", "similarity")


@dataclass(frozen=True)
class TaskSpec:
    """What one head takes and gives, in ONNX terms."""

    name: str
    aliases: tuple[str, ...]
    architecture: str
    input_axes: tuple[str, ...]
    # output name -> axis names; a name that is not an axis of the inputs is a fixed size
    # ("dim", "vocab", "num_labels") read from the config.
    outputs: dict[str, tuple[str, ...]]
    # One input as a record (a JSON Lines object, a request body, a table row): its fields, the
    # required ones first. A head with the single field "text" takes a bare string as its input.
    record_fields: tuple[str, ...] = ("text",)
    required_fields: tuple[str, ...] = ("text",)
    # The field a bare text fills (a TEXT argument of `predict`); the other required fields come
    # from elsewhere (--question, --choice).
    text_field: str = "text"
    # A pair too long for the model loses tokens from: both parts ("longest_first"), or the second
    # only ("only_second": a question is kept whole, its context cut).
    pair_truncation: str = "longest_first"
    compared_as: str = "probabilities"  # one of COMPARED_AS
    metric: str = "classes"  # one of METRICS
    has_labels: bool = False  # config.json's id2label names the classes of its outputs
    gives_embeddings: bool = False  # its pooled outputs are text vectors (served as /v1/embeddings)
    # GELUs in the head on top of one per encoder layer (the masked-LM transform has one).
    head_gelus: int = 0
    # transformers.js has a pipeline of this name (what `package --for transformers.js` serves).
    in_transformers_js: bool = True

    def __post_init__(self):
        if self.compared_as not in COMPARED_AS or self.metric not in METRICS:
            raise ValueError(f"{self.name}: compared_as / metric outside {COMPARED_AS} / {METRICS}")
        if self.text_field not in self.record_fields or not set(self.required_fields) <= set(self.record_fields):
            raise ValueError(f"{self.name}: text_field and required_fields must be record fields")

    @property
    def inputs(self) -> dict[str, tuple[str, ...]]:
        return {name: self.input_axes for name in INPUT_NAMES}

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(self.outputs)

    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        """torch.onnx.export's dynamic_axes: every batch / sequence / choice axis is dynamic."""
        dynamic = set(self.input_axes)
        axes = {**self.inputs, **self.outputs}
        return {
            name: {i: axis for i, axis in enumerate(names) if axis in dynamic}
            for name, names in axes.items()
        }

    @property
    def has_choices(self) -> bool:
        """Each input row is a set of choices (input axes batch_size, num_choices, sequence_length)."""
        return "num_choices" in self.input_axes

    def input_shape(self, batch_size: int, sequence_length: int, choices: int = CHOICES) -> tuple[int, ...]:
        """The shape of input_ids for `batch_size` rows of `sequence_length` tokens (`choices` each
        for multiple choice)."""
        sizes = {"batch_size": batch_size, "num_choices": choices, "sequence_length": sequence_length}
        return tuple(sizes[axis] for axis in self.input_axes)

    def example_feeds(
        self, vocab_size: int, batch_size: int, sequence_length: int, seed: int = 0, choices: int = CHOICES
    ) -> dict[str, np.ndarray]:
        """Made-up inputs of the given size: random token ids (never 0, the usual pad id), no padding."""
        import numpy as np  # here, so that the CLI's --help does not wait for numpy

        shape = self.input_shape(batch_size, sequence_length, choices)
        input_ids = np.random.default_rng(seed).integers(1, vocab_size, size=shape, dtype=np.int64)
        return {"input_ids": input_ids, "attention_mask": np.ones(shape, dtype=np.int64)}

    def sample_record(self, texts: list[str], index: int) -> dict:
        """A record of this head made from `texts` around `index` (calibration inputs): the text at
        `index` as the text, question or prompt; the next two as a context, the next CHOICES as choices."""

        def following(count: int) -> list[str]:
            return [texts[(index + step) % len(texts)] for step in range(1, count + 1)]

        made = {"text": texts[index], "question": texts[index], "prompt": texts[index],
                "context": " ".join(following(2)), "choices": following(CHOICES)}
        return {name: made[name] for name in self.required_fields}

    def model_texts(self, record: dict) -> list:
        """What the model reads for one record, a text or a text pair per row: the text (and its
        pair), the question with its context, or the prompt with each choice."""
        if self.has_choices:
            return [(record["prompt"], choice) for choice in record["choices"]]
        parts = [record[name] for name in self.record_fields if record.get(name) is not None]
        return [parts[0] if len(parts) == 1 else tuple(parts)]

    def input_from_record(self, record, where: str = "the record"):
        """What the pipeline takes for one record: a bare string for a text-only head, else a dict
        of the record's fields. A ValueError naming `where` when a required field is missing."""
        if isinstance(record, str) and self.required_fields == ("text",):
            return record
        if not isinstance(record, dict) or not set(self.required_fields) <= set(record):
            raise ValueError(f"{where}: {self.name} needs an object with {', '.join(self.required_fields)}")
        fields = {name: record[name] for name in self.record_fields if name in record}
        return fields["text"] if set(fields) == {"text"} else fields

    def per_token_outputs(self) -> tuple[str, ...]:
        """Outputs with a sequence axis: their values at padded positions mean nothing."""
        return tuple(name for name, axes in self.outputs.items() if "sequence_length" in axes)


TASKS: tuple[TaskSpec, ...] = (
    TaskSpec(
        name="feature-extraction",
        aliases=("default",),
        architecture="DistilBertModel",
        input_axes=TOKEN_AXES,
        outputs={"last_hidden_state": ("batch_size", "sequence_length", "dim")},
        gives_embeddings=True,
        metric="similarity",
        compared_as="mean-pooled",
    ),
    TaskSpec(
        name="fill-mask",
        aliases=("masked-lm",),
        architecture="DistilBertForMaskedLM",
        input_axes=TOKEN_AXES,
        outputs={"logits": ("batch_size", "sequence_length", "vocab")},
        metric="masked-word",
        head_gelus=1,
    ),
    TaskSpec(
        name="text-classification",
        aliases=("sequence-classification",),
        architecture="DistilBertForSequenceClassification",
        input_axes=TOKEN_AXES,
        outputs={"logits": ("batch_size", "num_labels")},
        record_fields=("text", "text_pair"),
        has_labels=True,
    ),
    TaskSpec(
        name="token-classification",
        aliases=(),
        architecture="DistilBertForTokenClassification",
        input_axes=TOKEN_AXES,
        outputs={"logits": ("batch_size", "sequence_length", "num_labels")},
        metric="entities",
        has_labels=True,
    ),
    TaskSpec(
        name="question-answering",
        aliases=(),
        architecture="DistilBertForQuestionAnswering",
        input_axes=TOKEN_AXES,
        outputs={
            "start_logits": ("batch_size", "sequence_length"),
            "end_logits": ("batch_size", "sequence_length"),
        },
        record_fields=("question", "context"),
        required_fields=("question", "context"),
        text_field="context",
        pair_truncation="only_second",
        compared_as="spans",
        metric="answers",
    ),
    TaskSpec(
        name="multiple-choice",
        aliases=(),
        architecture="DistilBertForMultipleChoice",
        input_axes=CHOICE_AXES,
        outputs={"logits": ("batch_size", "num_choices")},
        record_fields=("prompt", "choices"),
        required_fields=("prompt", "choices"),
        text_field="prompt",
        metric="choice",
        in_transformers_js=False,
    ),
)

TASK_NAMES: tuple[str, ...] = tuple(spec.name for spec in TASKS)
# What --task accepts: the names, then the older names kept as aliases.
TASK_CHOICES: tuple[str, ...] = TASK_NAMES + tuple(alias for spec in TASKS for alias in spec.aliases)


def get_task(name: str) -> TaskSpec:
    """The spec for a task name or alias; a TaskError listing the choices otherwise."""
    wanted = name.strip().lower()
    for spec in TASKS:
        if wanted == spec.name or wanted in spec.aliases:
            return spec
    raise TaskError(f"unknown task {name!r}: choose one of {', '.join(TASK_NAMES)}")


def task_for_architecture(architecture: str) -> TaskSpec:
    """The spec whose head is `architecture` (a config.json `architectures` entry)."""
    for spec in TASKS:
        if spec.architecture == architecture:
            return spec
    known = ", ".join(spec.architecture for spec in TASKS)
    raise TaskError(
        f"architecture {architecture!r} is not a DistilBERT head this tool exports ({known}); "
        "pass --task to choose one"
    )


def task_from_config(config: DistilBertConfig, task: str | None = None) -> TaskSpec:
    """The task given, else the one named by config.json `architectures`."""
    if task:
        return get_task(task)
    architectures = config.architectures
    if not architectures:
        raise TaskError("config.json names no architecture, so the task is unknown: pass --task")
    return task_for_architecture(architectures[0])
