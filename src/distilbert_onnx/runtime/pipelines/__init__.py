"""load(): a deployable folder (ours, or an Optimum export) to a pipeline for its task.

Only onnxruntime, tokenizers, numpy and the standard library are imported here and below; openvino
only when an OpenVINO variant is loaded (runtime/openvino_model.py).
"""

from __future__ import annotations

from pathlib import Path

from ...config import DistilBertConfig, load_config
from ...errors import ArtifactError, DeviceError, positive_int
from ...manifest import Manifest, read_manifest
from ...tasks import INPUT_NAMES, TaskSpec, get_task, task_from_config
from ...variants import AUTO, OPENVINO, VARIANTS, choose_variant
from ..backends import check_backend, check_variant_backend, open_variant
from ..batching import DEFAULT_MAX_TOKENS
from ..choice import choose_auto_cpu
from ..session import logger, resolve_device
from ..tokenizer import TextTokenizer
from . import (
    feature_extraction,
    fill_mask,
    multiple_choice,
    question_answering,
    text_classification,
    token_classification,
)
from .base import Context, Pipeline, TaskHandler

HANDLERS: dict[str, TaskHandler] = {
    "feature-extraction": feature_extraction.HANDLER,
    "fill-mask": fill_mask.HANDLER,
    "text-classification": text_classification.HANDLER,
    "token-classification": token_classification.HANDLER,
    "question-answering": question_answering.HANDLER,
    "multiple-choice": multiple_choice.HANDLER,
}

__all__ = ["Pipeline", "folder_task", "load_pipeline", "pipeline_on"]


def load_pipeline(
    folder: str | Path,
    device: str = "cpu",
    variant: str = "auto",
    threads: int | None = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    backend: str = "auto",
) -> Pipeline:
    """The pipeline of the folder's task on `device` (cpu, cuda, auto) with `variant` (auto or a name),
    run by `backend` (auto, onnxruntime or openvino; auto: whichever runs the chosen variant)."""
    folder = _existing(folder)
    positive_int("max_tokens", max_tokens)
    config = load_config(folder)
    manifest = read_manifest(folder)
    resolved = resolve_device(device)
    wants_openvino = backend == OPENVINO or (variant in VARIANTS and VARIANTS[variant].backend == OPENVINO)
    if device == "auto" and resolved == "cuda" and wants_openvino:
        logger.info("device=auto: OpenVINO runs on the CPU, so the CPU")
        resolved = "cpu"
    check_backend(backend, resolved)
    try:
        model, chosen = _open_model(folder, manifest, config, resolved, variant, backend, threads)
    except DeviceError:
        if device != "auto" or resolved == "cpu":
            raise
        # onnxruntime-gpu lists its CUDA provider even where no GPU can be used: auto means the CPU then.
        logger.info("device=auto: the CUDA provider did not start, using the CPU")
        model, chosen = _open_model(folder, manifest, config, "cpu", variant, backend, threads)
    if sorted(model.input_names) != sorted(INPUT_NAMES):
        raise ArtifactError(
            f"{chosen.file} takes inputs {model.input_names}; a DistilBERT graph takes input_ids and attention_mask only"
        )
    spec = folder_task(folder, model, config=config, manifest=manifest)
    tokenizer = TextTokenizer(folder, config.max_position_embeddings)
    return Pipeline(HANDLERS[spec.name], model, Context(spec, config, tokenizer), folder, chosen.name, max_tokens)


def pipeline_on(model, folder: str | Path, variant: str, max_tokens: int = DEFAULT_MAX_TOKENS,
                spec: TaskSpec | None = None) -> Pipeline:
    """The pipeline of FOLDER's task running `model` in place of one of the folder's graphs: anything
    with `run(feeds) -> {output name: array}` and `device`, `backend`, `precision` (a candidate graph
    being built, the PyTorch model). The folder gives config.json, the tokenizer and the task
    (`spec`, else folder_task's); `variant` is the name the pipeline reports."""
    folder = Path(folder)
    config = load_config(folder)
    spec = spec or folder_task(folder, config=config)
    tokenizer = TextTokenizer(folder, config.max_position_embeddings)
    return Pipeline(HANDLERS[spec.name], model, Context(spec, config, tokenizer), folder, variant, max_tokens)


# folder_task's default: the manifest is read from the folder.
_READ = object()


def folder_task(folder: str | Path, model=None, *, config: DistilBertConfig | None = None, manifest=_READ,
                device: str = "cpu") -> TaskSpec:
    """The task a folder holds, decided one way for load, benchmark, the server and the checks: the
    manifest's task; for a folder without a manifest (an Optimum export), its graph's outputs, with
    config.json `architectures` settling what they leave open (task_from_graph).

    `model` is one of the folder's graphs already open (else its `auto` graph for `device` is opened to
    read the outputs); `config` and `manifest` (None: the folder has none) spare reading them again.
    """
    folder = _existing(folder)
    manifest = read_manifest(folder) if manifest is _READ else manifest
    if manifest:
        return get_task(manifest.task)
    config = config or load_config(folder)
    if model is None:
        model = open_variant(folder, choose_variant(folder, device), device, None, None, config=config)
    return task_from_graph(model, config)


def _existing(folder: str | Path) -> Path:
    folder = Path(folder)
    if not folder.is_dir():
        raise ArtifactError(f"no folder at {folder}: pass a folder made by distilbert-onnx export (or Optimum)")
    return folder


def _open_model(folder: Path, manifest: Manifest | None, config: DistilBertConfig, device: str, variant: str,
                backend: str, threads: int | None):
    """(the model, its Variant) for `variant` on `device`: auto on the CPU is chosen per machine (choice.py)."""
    if variant == AUTO and device == "cpu":
        choice = choose_auto_cpu(folder, manifest, backend, threads, config=config)
        logger.info("variant=auto picked %s on the CPU: %s", choice.variant.name, choice.reason)
        model = choice.model or open_variant(folder, choice.variant, device, threads, manifest, config=config)
        return model, choice.variant
    chosen = choose_variant(folder, device, variant)
    check_variant_backend(chosen, backend)
    return open_variant(folder, chosen, device, threads, manifest, config=config), chosen


def task_from_graph(model, config: DistilBertConfig) -> TaskSpec:
    """The task of a folder without a manifest (an Optimum export), from its graph's outputs.

    config.json's `architectures` settles what the outputs leave open (and is checked against them).
    """
    outputs = model.output_shapes()
    if {"start_logits", "end_logits"} <= set(outputs):
        return get_task("question-answering")
    if "last_hidden_state" in outputs:
        return get_task("feature-extraction")
    if "logits" not in outputs:
        raise ArtifactError(f"{model.path.name} has outputs {sorted(outputs)}: not a DistilBERT task head")
    logits = outputs["logits"]
    if model.input_rank() == 3:
        return get_task("multiple-choice")
    if len(logits) == 2:
        return get_task("text-classification")
    if config.architectures:
        declared = task_from_config(config)
        if declared.name in ("fill-mask", "token-classification"):
            return declared
    return get_task("fill-mask" if logits[-1] == config.vocab_size else "token-classification")
