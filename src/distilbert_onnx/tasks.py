"""The task table: one frozen TaskSpec per DistilBERT head.

Everything that differs between heads (names, the architecture in config.json, the ONNX inputs and
outputs and their dynamic axes) lives here as data, so the exporter, the validator, the optimizer and
the runtime read the same facts. No torch import.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import DistilBertConfig
from .errors import TaskError

INPUT_NAMES = ("input_ids", "attention_mask")

TOKEN_AXES = ("batch_size", "sequence_length")
CHOICE_AXES = ("batch_size", "num_choices", "sequence_length")


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
    ),
    TaskSpec(
        name="fill-mask",
        aliases=("masked-lm",),
        architecture="DistilBertForMaskedLM",
        input_axes=TOKEN_AXES,
        outputs={"logits": ("batch_size", "sequence_length", "vocab")},
    ),
    TaskSpec(
        name="text-classification",
        aliases=("sequence-classification",),
        architecture="DistilBertForSequenceClassification",
        input_axes=TOKEN_AXES,
        outputs={"logits": ("batch_size", "num_labels")},
        record_fields=("text", "text_pair"),
    ),
    TaskSpec(
        name="token-classification",
        aliases=(),
        architecture="DistilBertForTokenClassification",
        input_axes=TOKEN_AXES,
        outputs={"logits": ("batch_size", "sequence_length", "num_labels")},
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
    ),
    TaskSpec(
        name="multiple-choice",
        aliases=(),
        architecture="DistilBertForMultipleChoice",
        input_axes=CHOICE_AXES,
        outputs={"logits": ("batch_size", "num_choices")},
        record_fields=("prompt", "choices"),
        required_fields=("prompt", "choices"),
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
