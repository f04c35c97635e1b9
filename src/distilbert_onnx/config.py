"""DistilBERT's config.json: read it, check it, fill in the documented defaults.

Shared by the exporter (which builds the model from it) and the runtime (labels, problem type,
maximum length), so it imports neither torch nor onnxruntime.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .artifacts import load_json
from .errors import ConfigError

ACTIVATIONS = ("gelu", "relu")


@dataclass(frozen=True)
class DistilBertConfig:
    """The fields of transformers' DistilBertConfig that shape the model, with its defaults."""

    vocab_size: int = 30522
    max_position_embeddings: int = 512
    sinusoidal_pos_embds: bool = False
    n_layers: int = 6
    n_heads: int = 12
    dim: int = 768
    hidden_dim: int = 3072
    dropout: float = 0.1
    attention_dropout: float = 0.1
    activation: str = "gelu"
    initializer_range: float = 0.02
    qa_dropout: float = 0.1
    seq_classif_dropout: float = 0.2
    pad_token_id: int = 0
    tie_word_embeddings: bool = True
    id2label: dict[int, str] = field(default_factory=lambda: {0: "LABEL_0", 1: "LABEL_1"})
    problem_type: str | None = None
    architectures: tuple[str, ...] = ()

    @property
    def num_labels(self) -> int:
        return len(self.id2label)

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads


_INT_FIELDS = (
    "vocab_size", "max_position_embeddings", "n_layers", "n_heads", "dim", "hidden_dim",
)
_PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")


def load_config(folder: str | Path) -> DistilBertConfig:
    """Read `folder/config.json`; a ConfigError says what is wrong with it."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise ConfigError(f"no config.json in {folder}: a DistilBERT checkpoint folder needs one")
    data = load_json(path, ConfigError, "re-save the checkpoint's config")
    if not isinstance(data, dict):
        raise ConfigError(f"{path} holds a {type(data).__name__}, not a JSON object")
    return parse_config(data, source=str(path))


def parse_config(data: dict, source: str = "config.json") -> DistilBertConfig:
    """Check a config dict and turn it into a DistilBertConfig."""
    model_type = data.get("model_type", "distilbert")
    if model_type != "distilbert":
        raise ConfigError(
            f"{source} is for model_type {model_type!r}: distilbert-onnx works with DistilBERT models only"
        )
    defaults = DistilBertConfig()
    values = {}
    for name in _INT_FIELDS:
        value = data.get(name, getattr(defaults, name))
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"{source}: {name} must be a positive integer, got {value!r}")
        values[name] = value
    if values["dim"] % values["n_heads"]:
        raise ConfigError(f"{source}: dim {values['dim']} is not divisible by n_heads {values['n_heads']}")
    activation = data.get("activation", defaults.activation)
    if activation not in ACTIVATIONS:
        raise ConfigError(f"{source}: activation {activation!r} is not one of {', '.join(ACTIVATIONS)}")
    problem_type = data.get("problem_type")
    if problem_type is not None and problem_type not in _PROBLEM_TYPES:
        raise ConfigError(f"{source}: problem_type {problem_type!r} is not one of {', '.join(_PROBLEM_TYPES)}")
    architectures = data.get("architectures") or ()
    if not isinstance(architectures, (list, tuple)) or not all(isinstance(a, str) for a in architectures):
        raise ConfigError(f"{source}: architectures must be a list of class names")
    pad_token_id = data.get("pad_token_id", defaults.pad_token_id)
    return DistilBertConfig(
        **values,
        sinusoidal_pos_embds=bool(data.get("sinusoidal_pos_embds", defaults.sinusoidal_pos_embds)),
        dropout=float(data.get("dropout", defaults.dropout)),
        attention_dropout=float(data.get("attention_dropout", defaults.attention_dropout)),
        activation=activation,
        initializer_range=float(data.get("initializer_range", defaults.initializer_range)),
        qa_dropout=float(data.get("qa_dropout", defaults.qa_dropout)),
        seq_classif_dropout=float(data.get("seq_classif_dropout", defaults.seq_classif_dropout)),
        pad_token_id=0 if pad_token_id is None else int(pad_token_id),
        tie_word_embeddings=bool(data.get("tie_word_embeddings", True)),
        id2label=_labels(data, source),
        problem_type=problem_type,
        architectures=tuple(architectures),
    )


def _labels(data: dict, source: str) -> dict[int, str]:
    """id2label with integer keys; `num_labels` alone gives LABEL_i names, as transformers does."""
    id2label = data.get("id2label")
    if id2label is None:
        count = data.get("num_labels", 2)
        if not isinstance(count, int) or count <= 0:
            raise ConfigError(f"{source}: num_labels must be a positive integer, got {count!r}")
        return {i: f"LABEL_{i}" for i in range(count)}
    if not isinstance(id2label, dict) or not id2label:
        raise ConfigError(f"{source}: id2label must be a non-empty mapping of ids to label names")
    try:
        labels = {int(key): str(value) for key, value in id2label.items()}
    except ValueError:
        raise ConfigError(f"{source}: id2label keys must be integers") from None
    if sorted(labels) != list(range(len(labels))):
        raise ConfigError(f"{source}: id2label ids must be 0..{len(labels) - 1}")
    return dict(sorted(labels.items()))
