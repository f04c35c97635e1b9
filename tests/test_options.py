"""Export / optimize / quantize options: one definition each (options.py) that the CLI, the Python
API and the jobs all follow, defaults and checks alike."""

from __future__ import annotations

import pytest

import distilbert_onnx as dox
from distilbert_onnx.errors import OptionError
from distilbert_onnx.manifest import read_manifest
from distilbert_onnx.options import (
    ATOL,
    CALIBRATION_ROWS,
    GRAPH,
    MAX_METRIC_DROP,
    MAX_PROB_DIFF,
    MIN_AGREEMENT,
    MIN_COSINE,
    MIN_WORST_COSINE,
    OPSET,
)
from distilbert_onnx.checks.quantize_settings import QuantizeSettings
from distilbert_onnx.tasks import get_task


def help_of(cli, command: str) -> str:
    return " ".join(cli(command, "--help").stdout.split())


def test_the_cli_shows_the_defaults_of_the_table(cli):
    export = help_of(cli, "export")
    assert f"--opset INTEGER ONNX opset (14 to 17). [default: {OPSET.default}]" in export
    assert f"Tolerance of the validation against PyTorch. [default: {ATOL.default}]" in export
    assert f"to fp32's (embeddings) [default: {MIN_COSINE.default}]." in export
    assert f"to fp32's (embeddings) [default: {MIN_WORST_COSINE.default}]." in export
    assert f"answer spans) [default: {MAX_PROB_DIFF.default}]." in export and "equal to fp32's [default: none]." in export
    assert f"Tolerance of the validation against model.onnx. [default: {ATOL.default}]" in help_of(cli, "optimize")
    assert f"[default: {GRAPH.default}]" in help_of(cli, "quantize")


def test_the_api_and_the_jobs_take_the_same_defaults(exported):
    manifest = read_manifest(exported["text-classification"]).data  # made by dox.export with no options
    assert manifest["opset"] == OPSET.default
    assert manifest["variants"]["fp32"]["validation"]["atol"] == ATOL.default
    assert manifest["variants"]["optimized"]["validation"]["atol"] == ATOL.default
    assert manifest["variants"]["quantized"]["quantization"]["target"] == {
        "max_prob_diff": MAX_PROB_DIFF.default, "min_agreement": MIN_AGREEMENT.default}
    settings = QuantizeSettings.from_options()
    assert settings.for_task(get_task("feature-extraction")).target.as_data() == {
        "min_cosine": MIN_COSINE.default, "min_worst_cosine": MIN_WORST_COSINE.default}
    assert settings.graph == GRAPH.default and settings.calibration_file is None and settings.gate_file is None
    assert QuantizeSettings() == settings


@pytest.mark.parametrize(
    "option, value, message",
    [
        (OPSET, 13, r"opset 13 is not supported: choose 14 to 17 \(default 17\)"),
        (ATOL, 0.0, "atol must be a positive tolerance, got 0.0"),
        (MIN_COSINE, 1.5, r"min-cosine must be in \(0, 1\], got 1.5"),
        (MIN_WORST_COSINE, 0.0, r"min-worst-cosine must be in \(0, 1\], got 0.0"),
        (MAX_PROB_DIFF, 1.5, r"max-prob-diff must be in \(0, 1\], got 1.5"),
        (MIN_AGREEMENT, 0.0, r"min-agreement must be in \(0, 1\], got 0.0"),
        (MAX_METRIC_DROP, -1.0, "max-metric-drop must be 0 or more points, got -1.0"),
        (CALIBRATION_ROWS, 0, "calibration-rows must be a positive integer, got 0"),
        (GRAPH, "both", "graph must be auto, fused or unfused, got 'both'"),
    ],
)
def test_each_check(option, value, message):
    with pytest.raises(OptionError, match=message):
        option.value(value)
    assert option.value(None) == option.default and option.value(option.default) == option.default


def test_checks_reach_every_front_end(cli, checkpoints, exported, tmp_path):
    folder = exported["text-classification"]  # each check comes before any work on it
    with pytest.raises(OptionError, match="atol must be a positive tolerance"):
        dox.optimize(folder, atol=-1.0)
    with pytest.raises(OptionError, match="graph must be"):
        dox.quantize(folder, graph="both")
    result = cli("export", str(checkpoints["text-classification"]), str(tmp_path / "out"),
                                       "--opset", "13")
    assert result.exit_code == 1 and "Error: opset 13 is not supported" in result.stderr
    assert not (tmp_path / "out").exists()
