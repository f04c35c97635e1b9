"""`benchmark` on tiny exports: rows for every variant, JSON, plot, PyTorch rows, errors. No timing
is asserted: only that every measurement is there and well formed."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnxruntime as ort
import pytest
from devices import CPU, CUDA, without_cuda

from distilbert_onnx import benchmark
from distilbert_onnx.benchmark import benchmark_folder
from distilbert_onnx.errors import ArtifactError, DeviceError, OptionError

QUICK = ["--warmup", "1", "--runs", "2", "--seconds", "0"]
ROW_KEYS = ["variant", "batch_size", "sequence_length", "p50_ms", "p90_ms", "p99_ms", "throughput"]


@pytest.mark.slow
def test_json_has_a_row_per_variant_batch_and_length(cli, exported, tmp_path):
    out = tmp_path / "bench.json"
    result = cli("benchmark", exported["text-classification"], "--batch-size", 1, "--batch-size", 3,
                 "--sequence-length", 8, "--sequence-length", 20, "--json", out, *QUICK)
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    rows = data["rows"]
    assert [list(row) for row in rows] == [ROW_KEYS] * 12
    assert [(r["variant"], r["batch_size"], r["sequence_length"]) for r in rows] == [
        (variant, batch, length) for variant in ("fp32", "optimized", "quantized") for batch in (1, 3) for length in (8, 20)]
    assert all(0 < r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"] and r["throughput"] > 0 for r in rows)
    assert {"cpu", "cores", "threads", "onnxruntime", "providers", "device"} <= set(data["machine"])
    assert "p50 ms" in result.stdout and "quantized" in result.stdout  # the table
    assert "batch   3 x   20 tokens" in result.stderr  # progress


def test_figures_of_a_row(exported, monkeypatch):
    """Percentiles and throughput from the measured seconds (here fixed, so the arithmetic shows)."""
    monkeypatch.setattr(benchmark, "measure", lambda run, **timing: np.array([0.010, 0.020, 0.030, 0.040]))
    result = benchmark_folder(exported["text-classification"], variants=["fp32"], batch_sizes=(4,), sequence_lengths=(8,))
    (row,) = result["rows"]
    assert (row["p50_ms"], row["p90_ms"], row["p99_ms"]) == (25.0, 37.0, 39.7)
    assert row["throughput"] == 160.0  # 4 sequences / 0.025 s mean latency


@pytest.mark.slow
def test_plot_is_written(cli, exported, tmp_path):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "latency.png"
    result = cli("benchmark", exported["feature-extraction"], "--sequence-length", 8, "--sequence-length", 16,
                 "--plot", plot, *QUICK)
    assert result.exit_code == 0, result.output
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_chosen_variants_multiple_choice_and_torch_rows(exported, checkpoints):
    result = benchmark_folder(exported["multiple-choice"], variants=["optimized"], batch_sizes=(2,),
                              sequence_lengths=(10,), compare_torch=checkpoints["multiple-choice"],
                              warmup=0, min_runs=2, min_seconds=0)
    assert [row["variant"] for row in result["rows"]] == ["optimized", "torch-fp32"]


def test_folder_without_models(cli, exported, tmp_path):
    folder = tmp_path / "empty"
    shutil.copytree(exported["text-classification"], folder)
    for model in folder.glob("*.onnx"):
        model.unlink()
    with pytest.raises(ArtifactError, match="holds no ONNX model to benchmark"):
        benchmark_folder(folder)
    result = cli("benchmark", folder)
    assert result.exit_code == 1 and result.stderr.startswith("Error: ") and "Traceback" not in result.output


def test_bad_requests_are_clear_errors(exported):
    with pytest.raises(OptionError, match="outside 1..512"):
        benchmark_folder(exported["text-classification"], sequence_lengths=(1000,))


@without_cuda
def test_cuda_without_a_cuda_provider(exported):
    with pytest.raises(DeviceError, match="CUDA was asked for"):
        benchmark_folder(exported["text-classification"], device="cuda")


def test_int8_on_cuda_is_refused_before_anything_runs(exported, monkeypatch):
    """Decided by the variant choice, once CUDA is there: onnxruntime listing its CUDA provider is
    enough to get past the device check, with or without a GPU."""
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])
    with pytest.raises(DeviceError, match=r"int8 \(quantized\) graph cannot run on CUDA"):
        benchmark_folder(exported["text-classification"], variants=["quantized"], device="cuda")


def test_help(cli):
    result = cli("benchmark", "--help")
    assert result.exit_code == 0 and "--compare-torch" in result.stdout and "--plot" in result.stdout
