"""The runtime's sessions and folders: devices (CUDA or a clear error, never a quiet CPU), variants,
threads, tokenizer settings, Optimum folders without a manifest, damaged or missing files."""

from __future__ import annotations

import json
import logging
import os
import warnings

import numpy as np
import onnxruntime as ort
import pytest
from devices import CUDA, needs_cuda, without_cuda
from runtime_helpers import LONG_TEXT, TEXTS, assert_same, call, copy_folder, sample
from tokenizers import Tokenizer

import distilbert_onnx as dox
from distilbert_onnx.manifest import MANIFEST_NAME
from distilbert_onnx.variants import choose_variant
from distilbert_onnx.errors import ArtifactError, ConfigError, DeviceError, OptionError
from distilbert_onnx.runtime.session import default_threads


# --- sessions: devices, variants, threads (issue point 2) -------------------------------------


@without_cuda
def test_cuda_unavailable_is_an_error_listing_the_providers(exported):
    with pytest.raises(DeviceError) as raised:
        dox.load(exported["text-classification"], device="cuda")
    message = str(raised.value)
    assert "CUDA was asked for" in message
    for provider in ort.get_available_providers():
        assert provider in message
    assert isinstance(raised.value, RuntimeError)


@without_cuda
def test_auto_device_says_what_it_picked(exported, caplog):
    with caplog.at_level(logging.INFO, logger="distilbert_onnx"):
        pipe = dox.load(exported["text-classification"], device="auto")
    assert pipe.device == "cpu"
    assert "device=auto picked cpu" in caplog.text
    assert pipe.model.session.get_providers() == ["CPUExecutionProvider"]


def test_unknown_device(exported):
    for device in ("gpu", "CUDA", None):
        with pytest.raises(DeviceError, match="unknown device"):
            dox.load(exported["text-classification"], device=device)


def test_int8_on_cuda_is_refused(exported, monkeypatch):
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, "CPUExecutionProvider"])
    with pytest.raises(DeviceError, match=r"int8 \(quantized\) graph cannot run on CUDA"):
        dox.load(exported["text-classification"], device="cuda", variant="quantized")


@pytest.mark.parametrize("max_tokens", [0, "512", None])
def test_bad_token_cap(exported, max_tokens):
    with pytest.raises(OptionError, match="max_tokens must be a positive integer"):
        dox.load(exported["text-classification"], max_tokens=max_tokens)


@without_cuda
def test_auto_uses_the_cpu_when_a_listed_cuda_provider_cannot_start(exported, monkeypatch, caplog):
    """onnxruntime-gpu lists CUDA even without a usable GPU: auto then means the CPU, and says so."""
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, "CPUExecutionProvider"])
    with warnings.catch_warnings(), caplog.at_level(logging.INFO, logger="distilbert_onnx"):
        warnings.simplefilter("ignore")
        pipe = dox.load(exported["text-classification"], device="auto")
    assert pipe.device == "cpu" and pipe.variant == "quantized"
    assert "did not start, using the CPU" in caplog.text


@without_cuda
def test_cuda_that_falls_back_to_cpu_is_an_error(exported, monkeypatch):
    """onnxruntime quietly runs on the CPU when the CUDA provider cannot start: we refuse."""
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, "CPUExecutionProvider"])
    with warnings.catch_warnings(), pytest.raises(DeviceError, match="could not start the CUDA provider"):
        warnings.simplefilter("ignore")  # onnxruntime's own warning about the missing provider
        dox.load(exported["text-classification"], device="cuda")


@needs_cuda
def test_cuda_runs_with_io_binding(exported, monkeypatch):
    pipe = dox.load(exported["question-answering"], device="cuda", variant="fp32")
    assert pipe.device == "cuda" and pipe.model.session.get_providers()[0] == CUDA
    bound = []
    original = pipe.model._run_bound
    monkeypatch.setattr(pipe.model, "_run_bound", lambda feeds: bound.append(1) or original(feeds))
    cpu = dox.load(exported["question-answering"], device="cpu", variant="fp32")
    arguments = {"question": "Who lives in Paris?", "context": LONG_TEXT, "top_k": 3}
    assert_same(pipe(**arguments), cpu(**arguments), atol=1e-3)
    assert bound


def test_variant_choice_as_in_the_design(exported, export_tiny, tmp_path):
    full = exported["text-classification"]
    assert choose_variant(full, "cpu").name == "quantized"
    assert choose_variant(full, "cuda").name == "optimized"  # no fp16 graph in this folder
    assert dox.load(full).variant == "quantized"
    _, plain = export_tiny("text-classification", seed=21)
    assert choose_variant(plain, "cpu").name == "fp32" and choose_variant(plain, "cuda").name == "fp32"
    assert dox.load(plain).variant == "fp32"
    fused = copy_folder(full, tmp_path)
    (fused / "model_quantized.onnx").unlink()
    assert dox.load(fused).variant == "optimized"
    for variant in ("fp32", "optimized", "quantized"):
        pipe = dox.load(full, variant=variant)
        assert pipe.variant == variant and pipe.model.path.name == choose_variant(full, "cpu", variant).file


def test_missing_and_unknown_variants(exported, export_tiny):
    _, plain = export_tiny("text-classification", seed=21)
    message = r"has no quantized variant \(model_quantized.onnx\); make it with: distilbert-onnx quantize"
    with pytest.raises(ArtifactError, match=message):
        dox.load(plain, variant="quantized")
    with pytest.raises(DeviceError, match=r"fp16 graph is built for cuda, not cpu"):
        dox.load(exported["text-classification"], variant="fp16")
    with pytest.raises(ArtifactError, match=r"unknown variant 'int8'"):
        dox.load(plain, variant="int8")


def test_cpu_threads_default_to_the_cores_and_can_be_set(exported):
    folder = exported["text-classification"]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert default_threads() == cores
    assert dox.load(folder).model.session.get_session_options().intra_op_num_threads == default_threads()
    assert dox.load(folder, threads=1).model.session.get_session_options().intra_op_num_threads == 1
    for threads in (0, -2, 1.5, "2", True):
        with pytest.raises(OptionError, match="threads must be a positive integer"):
            dox.load(folder, threads=threads)


def test_quantized_variant_gives_results_of_the_same_form(exported):
    """int8 scores differ from fp32 by design; the form of the results does not."""
    fp32 = dox.load(exported["text-classification"], variant="fp32")
    int8 = dox.load(exported["text-classification"], variant="quantized")
    for ours, theirs in zip(int8(TEXTS, top_k=None), fp32(TEXTS, top_k=None)):
        assert sorted(entry["label"] for entry in ours) == sorted(entry["label"] for entry in theirs)
        assert sum(entry["score"] for entry in ours) == pytest.approx(1.0, abs=1e-5)


# --- the folder: tokenizer settings, Optimum layout, damage (issue points 2, 3, 7) -------------


@pytest.mark.slow
def test_padding_and_truncation_baked_into_tokenizer_json_are_ignored(pipes, exported, tmp_path):
    for task in ("text-classification", "token-classification", "question-answering"):
        folder = copy_folder(exported[task], tmp_path, task)
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tokenizer.enable_padding(length=100, pad_id=0, pad_token="[PAD]")
        tokenizer.enable_truncation(max_length=8)
        tokenizer.save(str(folder / "tokenizer.json"))
        assert json.loads((folder / "tokenizer.json").read_text())["truncation"]["max_length"] == 8
        baked = dox.load(folder, variant="fp32")
        assert_same(call(baked, sample(task)), call(pipes[task], sample(task)), atol=1e-6)
        assert_same(baked([TEXTS[0], LONG_TEXT]) if task != "question-answering" else
                    baked(question="Who?", context=LONG_TEXT, top_k=3),
                    pipes[task]([TEXTS[0], LONG_TEXT]) if task != "question-answering" else
                    pipes[task](question="Who?", context=LONG_TEXT, top_k=3), atol=1e-6)


def test_tokenizer_max_length_caps_the_model_length(exported, tmp_path, pipes):
    folder = copy_folder(exported["feature-extraction"], tmp_path)
    settings = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**settings, "model_max_length": 16}))
    assert np.array(dox.load(folder, variant="fp32")(LONG_TEXT)).shape == (1, 16, 32)
    (folder / "tokenizer_config.json").write_text(json.dumps({**settings, "model_max_length": int(1e30)}))  # "no limit"
    assert np.array(dox.load(folder, variant="fp32")(LONG_TEXT)).shape == (1, 512, 32)


@pytest.mark.parametrize("task", ["text-classification", "token-classification", "fill-mask", "feature-extraction",
                                  "question-answering", "multiple-choice"])
def test_optimum_folder_without_manifest(pipes, exported, tmp_path, task):
    folder = copy_folder(exported[task], tmp_path)
    (folder / MANIFEST_NAME).unlink()
    pipe = dox.load(folder)
    assert pipe.task == task and pipe.variant == "quantized"
    fp32 = dox.load(folder, variant="fp32")
    assert_same(call(fp32, sample(task)), call(pipes[task], sample(task)), atol=1e-6)


@pytest.mark.parametrize("task", ["token-classification", "fill-mask"])
def test_optimum_folder_without_architectures(exported, tmp_path, task):
    """Per-token logits: the vocabulary size tells fill-mask from token-classification."""
    folder = copy_folder(exported[task], tmp_path)
    (folder / MANIFEST_NAME).unlink()
    config = json.loads((folder / "config.json").read_text())
    del config["architectures"]
    (folder / "config.json").write_text(json.dumps(config))
    assert dox.load(folder, variant="fp32").task == task


@pytest.mark.parametrize("content", [b"", b"not an onnx model at all", b"\x08\x07\x12\x04junk" * 10, "half"])
def test_a_damaged_model_file_fails_at_load(exported, tmp_path, content):
    """Without a manifest (an Optimum folder) onnxruntime finds the damage; with one, the sha256 check
    does first (test_integrity.py)."""
    folder = copy_folder(exported["text-classification"], tmp_path)
    (folder / MANIFEST_NAME).unlink()
    model = folder / "model.onnx"
    if content == "half":
        data = model.read_bytes()
        content = data[: len(data) // 2]
    model.write_bytes(content)
    with pytest.raises(ArtifactError, match=r"cannot load .*model\.onnx .*the file is damaged or not an ONNX model"):
        dox.load(folder, variant="fp32")


def test_missing_files_fail_at_load(exported, tmp_path):
    source = exported["text-classification"]
    with pytest.raises(ArtifactError, match="no folder at"):
        dox.load(tmp_path / "nowhere")
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(ArtifactError, match="no folder at"):
        dox.load(tmp_path / "a_file")

    no_graphs = copy_folder(source, tmp_path, "no_graphs")
    for graph in no_graphs.glob("*.onnx"):
        graph.unlink()
    with pytest.raises(ArtifactError, match=r"holds no ONNX model for cpu"):
        dox.load(no_graphs)
    with pytest.raises(ArtifactError, match=r"has no fp32 variant \(model.onnx\)"):
        dox.load(no_graphs, variant="fp32")

    no_tokenizer = copy_folder(source, tmp_path, "no_tokenizer")
    (no_tokenizer / "tokenizer.json").unlink()
    with pytest.raises(ArtifactError, match=r"no tokenizer.json in .*needs its tokenizer"):
        dox.load(no_tokenizer)

    bad_tokenizer = copy_folder(source, tmp_path, "bad_tokenizer")
    (bad_tokenizer / "tokenizer.json").write_text("{not json")
    with pytest.raises(ArtifactError, match=r"cannot read .*tokenizer.json"):
        dox.load(bad_tokenizer)

    no_config = copy_folder(source, tmp_path, "no_config")
    (no_config / "config.json").unlink()
    with pytest.raises(ConfigError, match=r"no config.json"):
        dox.load(no_config)

    bad_manifest = copy_folder(source, tmp_path, "bad_manifest")
    (bad_manifest / MANIFEST_NAME).write_text("{")
    with pytest.raises(ArtifactError, match=r"is not valid JSON"):
        dox.load(bad_manifest)

    bad_settings = copy_folder(source, tmp_path, "bad_settings")
    (bad_settings / "tokenizer_config.json").write_bytes(b"\xff\xfe")
    with pytest.raises(ArtifactError, match=r"tokenizer_config.json is not valid JSON"):
        dox.load(bad_settings)
