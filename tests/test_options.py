"""Export / optimize / quantize options: one definition each (options.py) that the CLI, the Python
API and the jobs all follow, defaults and checks alike."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import distilbert_onnx as dox
from distilbert_onnx.cli import main
from distilbert_onnx.errors import OptionError
from distilbert_onnx.manifest import read_manifest
from distilbert_onnx.options import ATOL, GRAPH, MIN_COSINE, MIN_WORST_COSINE, OPSET
from distilbert_onnx.quantize_settings import QuantizeSettings


def help_of(command: str) -> str:
    return " ".join(CliRunner().invoke(main, [command, "--help"]).stdout.split())


def test_the_cli_shows_the_defaults_of_the_table():
    export = help_of("export")
    assert f"--opset INTEGER ONNX opset (14 to 17). [default: {OPSET.default}]" in export
    assert f"Tolerance of the validation against PyTorch. [default: {ATOL.default}]" in export
    assert f"to fp32 [default: {MIN_COSINE.default}]." in export and f"to fp32 [default: {MIN_WORST_COSINE.default}]." in export
    assert f"Tolerance of the validation against model.onnx. [default: {ATOL.default}]" in help_of("optimize")
    assert f"[default: {GRAPH.default}]" in help_of("quantize")


def test_the_api_and_the_jobs_take_the_same_defaults(exported):
    manifest = read_manifest(exported["text-classification"]).data  # made by dox.export with no options
    assert manifest["opset"] == OPSET.default
    assert manifest["variants"]["fp32"]["validation"]["atol"] == ATOL.default
    assert manifest["variants"]["optimized"]["validation"]["atol"] == ATOL.default
    assert manifest["variants"]["quantized"]["quantization"]["target"] == {
        "min_cosine": MIN_COSINE.default, "min_worst_cosine": MIN_WORST_COSINE.default}
    settings = QuantizeSettings.from_options()
    assert (settings.min_cosine, settings.min_worst_cosine, settings.graph) == (
        MIN_COSINE.default, MIN_WORST_COSINE.default, GRAPH.default)
    assert QuantizeSettings() == settings


@pytest.mark.parametrize(
    "option, value, message",
    [
        (OPSET, 13, r"opset 13 is not supported: choose 14 to 17 \(default 17\)"),
        (ATOL, 0.0, "atol must be a positive tolerance, got 0.0"),
        (MIN_COSINE, 1.5, r"min-cosine must be in \(0, 1\], got 1.5"),
        (MIN_WORST_COSINE, 0.0, r"min-worst-cosine must be in \(0, 1\], got 0.0"),
        (GRAPH, "both", "graph must be auto, fused or unfused, got 'both'"),
    ],
)
def test_each_check(option, value, message):
    with pytest.raises(OptionError, match=message):
        option.value(value)
    assert option.value(None) == option.default and option.value(option.default) == option.default


def test_checks_reach_every_front_end(checkpoints, exported, tmp_path):
    folder = exported["text-classification"]  # each check comes before any work on it
    with pytest.raises(OptionError, match="atol must be a positive tolerance"):
        dox.optimize(folder, atol=-1.0)
    with pytest.raises(OptionError, match="graph must be"):
        dox.quantize(folder, graph="both")
    result = CliRunner().invoke(main, ["export", str(checkpoints["text-classification"]), str(tmp_path / "out"),
                                       "--opset", "13"])
    assert result.exit_code == 1 and "Error: opset 13 is not supported" in result.stderr
    assert not (tmp_path / "out").exists()
