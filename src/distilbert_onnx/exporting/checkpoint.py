"""Load a DistilBERT checkpoint (a local folder or a Hub id) into the model of one task head.

Weights come from model.safetensors, a sharded safetensors index, or pytorch_model.bin read with
`weights_only=True` (never unpickling arbitrary code). Keys are matched to the head by their
Hugging Face names; a bare-encoder checkpoint (no `distilbert.` prefix) loads too. Anything the head
needs and the checkpoint lacks is a MissingWeightsError naming it: nothing is initialised at random.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ..artifacts import sha256_file
from ..checks.probes import Runner
from ..checks.pytorch import pytorch_runner
from ..config import DistilBertConfig, load_config
from ..errors import CheckpointError, MissingExtraError, MissingWeightsError, first_line
from ..tasks import TaskSpec, task_from_config
from .modeling import DistilBertModel, build_model, sinusoidal_positions

ENCODER_PREFIX = "distilbert."
SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
PYTORCH_BIN = "pytorch_model.bin"
PYTORCH_BIN_INDEX = "pytorch_model.bin.index.json"
# Files fetched from the Hub: the config, the tokenizer, and weights (safetensors preferred).
HUB_METADATA = ["config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"]


@dataclass
class Checkpoint:
    """A checkpoint loaded for one task: the eval-mode model and where it came from."""

    model: torch.nn.Module
    config: DistilBertConfig
    task: TaskSpec
    folder: Path
    source: str
    weight_files: dict[str, str]  # file name -> sha256


def load_checkpoint(model_id: str | Path, task: str | None = None, revision: str | None = None) -> Checkpoint:
    """Resolve `model_id`, read its config and weights, and build the head for `task`."""
    folder = resolve_checkpoint(model_id, revision)
    config = load_config(folder)
    spec = task_from_config(config, task)
    files = weight_files(folder)
    state = read_state_dict(folder, files)
    model = build_model(config, spec.name)
    model.load_state_dict(match_state_dict(model, state, config), assign=True, strict=True)
    _tie_output_embeddings(model, config)
    return Checkpoint(
        model=model.eval(),
        config=config,
        task=spec,
        folder=folder,
        source=str(model_id),
        weight_files={path.name: sha256_file(path) for path in files},
    )


def pytorch_reference(source: Path, spec: TaskSpec, revision: str | None) -> Runner:
    """The PyTorch model of checkpoint folder `source` for `spec`, as a Runner (what `validate` checks
    model.onnx against again)."""
    return pytorch_runner(load_checkpoint(source, spec.name, revision).model, spec)


def resolve_checkpoint(model_id: str | Path, revision: str | None = None) -> Path:
    """A local folder as it is; otherwise a Hub id downloaded with huggingface_hub."""
    path = Path(model_id).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise CheckpointError(f"{model_id} is a file: pass the checkpoint folder that holds config.json")
    text = str(model_id)
    if text.startswith((".", "/", "~")) or text.count("/") > 1 or "\\" in text:
        raise CheckpointError(f"no checkpoint folder at {model_id}")
    return _download(text, revision)


def _download(repo_id: str, revision: str | None) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise MissingExtraError(
            f"{repo_id} is not a local folder, and huggingface_hub is not installed to fetch it from the Hub: "
            "pip install huggingface_hub, or pass a local checkpoint folder"
        ) from None
    try:
        folder = Path(snapshot_download(repo_id, revision=revision, allow_patterns=HUB_METADATA + ["*.safetensors*"]))
        if not (folder / SAFETENSORS).exists() and not (folder / SAFETENSORS_INDEX).exists():
            folder = Path(snapshot_download(repo_id, revision=revision, allow_patterns=HUB_METADATA + ["pytorch_model*"]))
    except Exception as exc:  # network, authentication, unknown repo: all end the same way for the user
        raise CheckpointError(
            f"no local folder {repo_id}, and fetching it from the Hugging Face Hub failed ({first_line(exc)}); "
            "check the id and your connection, or pass a local checkpoint folder"
        ) from None
    return folder


def weight_files(folder: Path) -> list[Path]:
    """The files holding the weights, in the order of preference: safetensors first, then .bin."""
    for single, index in ((SAFETENSORS, SAFETENSORS_INDEX), (PYTORCH_BIN, PYTORCH_BIN_INDEX)):
        if (folder / single).is_file():
            return [folder / single]
        if (folder / index).is_file():
            return _shards(folder / index)
    raise CheckpointError(
        f"no weights in {folder}: expected {SAFETENSORS}, {SAFETENSORS_INDEX}, {PYTORCH_BIN} or {PYTORCH_BIN_INDEX}"
    )


def _shards(index_path: Path) -> list[Path]:
    try:
        weight_map = json.loads(index_path.read_text(encoding="utf-8"))["weight_map"]
        names = sorted(set(weight_map.values()))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise CheckpointError(f"{index_path} is not a valid shard index (no weight_map)") from None
    shards = [index_path.parent / name for name in names]
    missing = [shard.name for shard in shards if not shard.is_file()]
    if missing:
        raise CheckpointError(f"{index_path.name} lists shards that are missing: {', '.join(missing)}")
    return shards


def read_state_dict(folder: Path, files: list[Path]) -> dict[str, torch.Tensor]:
    """Every tensor of every weight file, as float32."""
    state: dict[str, torch.Tensor] = {}
    for path in files:
        try:
            if path.name.endswith(".safetensors"):
                from safetensors.torch import load_file

                tensors = load_file(path)
            else:
                tensors = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # safetensors, zip and unpickling errors all mean a bad file
            raise CheckpointError(f"cannot read weights from {path} ({first_line(exc)}): is the file complete?") from None
        if not isinstance(tensors, dict):
            raise CheckpointError(f"{path} does not hold a state dict")
        state.update(tensors)
    return {
        name: tensor.float() if tensor.is_floating_point() else tensor for name, tensor in state.items()
    }


def match_state_dict(
    model: torch.nn.Module, state: dict[str, torch.Tensor], config: DistilBertConfig
) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors under the names `model` expects; missing or misshapen ones are errors.

    Checkpoint keys are compared in one namespace, with the encoder under `distilbert.`, so a head
    model loads from a bare-encoder checkpoint and the bare encoder loads from a head checkpoint.
    """
    available = {_with_prefix(name): tensor for name, tensor in state.items()}
    bare = isinstance(model, DistilBertModel)
    expected = model.state_dict(keep_vars=True)
    matched: dict[str, torch.Tensor] = {}
    missing: list[str] = []
    for name, parameter in expected.items():
        full_name = ENCODER_PREFIX + name if bare else name
        tensor = available.get(full_name)
        if tensor is None:
            tensor = _derivable(full_name, available, config)
        if tensor is None:
            missing.append(full_name)
            continue
        if tuple(tensor.shape) != tuple(parameter.shape):
            raise CheckpointError(
                f"weight {full_name} has shape {tuple(tensor.shape)} but config.json implies "
                f"{tuple(parameter.shape)}: the config and the weights do not belong together"
            )
        matched[name] = tensor
    if missing:
        shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        raise MissingWeightsError(
            f"the checkpoint lacks {len(missing)} weight(s) the {type(model).__name__} head needs: {shown}. "
            "Export a task this checkpoint was trained for (--task), or a checkpoint that has this head"
        )
    return matched


def _with_prefix(name: str) -> str:
    return name if name.startswith(ENCODER_PREFIX) or not name.startswith(("embeddings.", "transformer.")) else (
        ENCODER_PREFIX + name
    )


def _derivable(name: str, available: dict[str, torch.Tensor], config: DistilBertConfig) -> torch.Tensor | None:
    """Weights a checkpoint may leave out because they follow from others or from the config."""
    if name == "vocab_projector.weight" and config.tie_word_embeddings:
        return available.get("distilbert.embeddings.word_embeddings.weight")
    if name == "distilbert.embeddings.position_embeddings.weight" and config.sinusoidal_pos_embds:
        return sinusoidal_positions(config.max_position_embeddings, config.dim)
    return None


def _tie_output_embeddings(model: torch.nn.Module, config: DistilBertConfig) -> None:
    """assign=True gives every key its own Parameter; re-share the tied MLM projection."""
    if config.tie_word_embeddings and hasattr(model, "vocab_projector"):
        model.vocab_projector.weight = model.distilbert.embeddings.word_embeddings.weight
