"""Shared fixtures: a tokenizer trained by the tests, tiny checkpoints (dim 32, 2 layers) of every
head in the Hugging Face folder layout, their exported folders, and fp32 pipelines on them. Nothing is
downloaded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from distilbert_onnx.exporting.demo import make_checkpoint, sample_texts, train_tokenizer  # noqa: E402
from distilbert_onnx.tasks import TASK_NAMES  # noqa: E402
from export_helpers import Exports, add_openvino  # noqa: E402
from runtime_helpers import RecordingSession  # noqa: E402

TINY = {"dim": 32, "n_layers": 2, "n_heads": 2, "hidden_dim": 64}
# Words the runtime tests use (names, places), so they are whole tokens of the test vocabulary.
EXTRA_TEXTS = [
    "Maria Gonzalez lives in Paris and works for the United Nations in Geneva.",
    "John Smith flew from New York to London with British Airways on Monday.",
    "The capital of France is Paris; the capital of Italy is Rome.",
]


@pytest.fixture(scope="session")
def cli():
    """cli(*args) -> click's Result of `distilbert-onnx ARGS` run in this process (each argument
    passed as str): the one CLI runner of the tests."""
    from click.testing import CliRunner

    from distilbert_onnx.cli import main

    runner = CliRunner()
    return lambda *args: runner.invoke(main, [str(arg) for arg in args])


@pytest.fixture(scope="session")
def tokenizer():
    """A WordPiece tokenizer trained here on the package's sample texts."""
    return train_tokenizer(sample_texts() + EXTRA_TEXTS, vocab_size=1200)


@pytest.fixture(scope="session")
def make_tiny(tmp_path_factory, tokenizer):
    """make_tiny(task, **overrides) -> a new tiny checkpoint folder for `task`."""

    def make(task: str, name: str | None = None, **overrides) -> Path:
        folder = tmp_path_factory.mktemp(name or task.replace("-", "_"))
        return make_checkpoint(folder, task, tokenizer=tokenizer, **{**TINY, **overrides})

    return make


@pytest.fixture(scope="session")
def checkpoints(make_tiny) -> dict[str, Path]:
    """One tiny checkpoint per task, each with its own random weights."""
    return {task: make_tiny(task, seed=index) for index, task in enumerate(TASK_NAMES)}


@pytest.fixture(scope="session")
def exported(checkpoints, tmp_path_factory) -> Exports:
    """exported[task] -> folder with model.onnx, model_optimized.onnx and model_quantized.onnx (the
    default export without the OpenVINO IRs, so that variant="auto" is onnxruntime's rule here;
    test_openvino.py exports with them)."""
    return Exports(checkpoints, tmp_path_factory.mktemp("exported"))


@pytest.fixture(scope="session")
def export_tiny(make_tiny, tmp_path_factory):
    """export_tiny(task, **overrides) -> (checkpoint, exported folder with model.onnx only), made once
    per set of arguments: for the configurations the shared `exported` folders do not cover."""
    made: dict[tuple, tuple[Path, Path]] = {}

    def export(task: str, **overrides) -> tuple[Path, Path]:
        key = (task, repr(sorted(overrides.items())))
        if key not in made:
            import distilbert_onnx as dox

            checkpoint = make_tiny(task, **overrides)
            target = tmp_path_factory.mktemp("exported_tiny") / task
            made[key] = (checkpoint, dox.export(checkpoint, target, optimize=False, quantize=False, openvino=False).folder)
        return made[key]

    return export


@pytest.fixture(scope="session")
def pipes(exported):
    """pipes[task] -> our fp32 pipeline on the shared exported folder of `task` (a module may override)."""
    import distilbert_onnx as dox

    class Pipes(dict):
        def __missing__(self, task):
            self[task] = dox.load(exported[task], variant="fp32")
            return self[task]

    return Pipes()


@pytest.fixture
def recorded(monkeypatch):
    """recorded(pipe) -> the list of feeds the pipeline's model is given from now on."""

    def record(pipe):
        recorder = RecordingSession(pipe.model.session)
        monkeypatch.setattr(pipe.model, "session", recorder)
        return recorder.feeds

    return record


@pytest.fixture(scope="session")
def openvino_exported(exported, tmp_path_factory):
    """openvino_exported(task, int8=True, f32_only=False) -> a copy of exported[task] with the OpenVINO
    variants made by the product's builder (export_helpers.add_openvino), once per set of options."""
    pytest.importorskip("openvino")
    import shutil

    made: dict[tuple, Path] = {}

    def make(task: str, **options) -> Path:
        key = (task, repr(sorted(options.items())))
        if key not in made:
            folder = tmp_path_factory.mktemp("openvino_exported") / task
            shutil.copytree(exported[task], folder)
            made[key] = add_openvino(folder, **options)
        return made[key]

    return make


@pytest.fixture
def own_folder(exported, tmp_path, monkeypatch):
    """A private copy of the exported text-classification folder (to damage or re-export), and a
    private per-user cache (the verified sha256s, the auto choice)."""
    import shutil

    monkeypatch.setenv("DISTILBERT_ONNX_CACHE", str(tmp_path / "cache"))
    copy = tmp_path / "model"
    shutil.copytree(exported["text-classification"], copy)
    return copy


@pytest.fixture(scope="session")
def uncertain_classifier(make_tiny, tmp_path_factory):
    """A two-label classifier whose logits are near zero on every calibration text (its bias cancels
    their mean), as a real binary classifier's are on uncertain inputs: int8 noise turns the logit
    vector around (cosine near -1) while the probabilities barely move."""
    import numpy as np
    from safetensors.numpy import load_file, save_file

    import distilbert_onnx as dox
    from distilbert_onnx.config import load_config
    from distilbert_onnx.checks.fidelity import calibration_batches, reference_outputs
    from distilbert_onnx.runtime.session import OnnxModel
    from distilbert_onnx.tasks import get_task

    checkpoint = make_tiny("text-classification", name="uncertain", seed=7)
    first = dox.export(checkpoint, tmp_path_factory.mktemp("uncertain") / "first", optimize=False, quantize=False,
                       openvino=False).folder
    spec = get_task("text-classification")
    batches = calibration_batches(first, spec, load_config(first), sample_texts())
    logits = np.concatenate([out["logits"] for out in reference_outputs(OnnxModel(first / "model.onnx").run, batches)])
    weights = load_file(checkpoint / "model.safetensors")
    weights["classifier.bias"] = (weights["classifier.bias"] - logits.mean(axis=0)).astype(np.float32)
    save_file(weights, checkpoint / "model.safetensors")
    return checkpoint


# --- the parity tests' pipelines (test_runtime_parity*.py) -------------------------------------------


@pytest.fixture(scope="module")
def ours(exported):
    """ours(task, variant="fp32") -> our pipeline on the shared exported folder of `task`."""
    import distilbert_onnx as dox

    loaded = {}

    def get(task: str, variant: str = "fp32"):
        if (task, variant) not in loaded:
            loaded[task, variant] = dox.load(exported[task], variant=variant)
        return loaded[task, variant]

    return get


@pytest.fixture(scope="module")
def reference(checkpoints):
    """reference(task, folder=None) -> transformers' pipeline on a checkpoint folder (default: the shared one)."""
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    loaded = {}

    def get(task: str, folder=None):
        folder = str(folder or checkpoints[task])
        if folder not in loaded:
            loaded[folder] = transformers.pipeline(task, model=folder)
        return loaded[folder]

    return get


@pytest.fixture(scope="module")
def pair(export_tiny, reference):
    """pair(task, **overrides) -> (ours, transformers') on a checkpoint made with `overrides`."""
    import distilbert_onnx as dox

    def get(task: str, **overrides):
        checkpoint, folder = export_tiny(task, **overrides)
        return dox.load(folder, variant="fp32"), reference(task, checkpoint)

    return get
