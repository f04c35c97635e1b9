"""The CLI's build commands through click's CliRunner: export, optimize, quantize, validate, info,
demo-checkpoint, and --help for every command. (predict: test_predict_cli.py; benchmark: test_benchmark.py.)"""

from __future__ import annotations

import shutil

import pytest
from devices import without_cuda

from distilbert_onnx.cli import main

COMMANDS = sorted(main.commands)


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception  # handled
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(cli, command):
    result = cli(command, "--help")
    assert result.exit_code == 0 and result.stdout.startswith(f"Usage: main {command}")


def test_main_help_lists_every_command_and_version(cli):
    result = cli("--help")
    assert result.exit_code == 0 and all(command in result.stdout for command in COMMANDS)
    assert cli("--version").stdout.startswith("distilbert-onnx, version")


def test_export_shows_each_stage_with_its_time_and_a_summary(cli, checkpoints, tmp_path):
    result = cli("export", checkpoints["token-classification"], tmp_path / "out", "--no-quantize", "--no-openvino")
    assert result.exit_code == 0, result.output
    for stage in ("load checkpoint", "export token-classification head to ONNX", "validate model.onnx against PyTorch",
                  "fuse attention", "validate model_optimized.onnx against PyTorch"):
        assert f"- {stage}" in result.stderr
    assert result.stderr.count("done in") == 6
    assert "exported token-classification to" in result.stdout and "model_optimized.onnx" in result.stdout


def test_export_errors_are_one_line(cli, checkpoints, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    assert_one_line_error(cli("export", checkpoints["text-classification"], tmp_path / "busy"), "--force")
    assert_one_line_error(cli("export", tmp_path / "no" / "such" / "dir", tmp_path / "out"), "no checkpoint folder")
    assert_one_line_error(cli("export", checkpoints["text-classification"], tmp_path / "out", "--task", "question-answering"),
                          "qa_outputs.weight")
    assert not (tmp_path / "out").exists()


def test_validation_failure_prints_the_report_and_exits_non_zero(cli, checkpoints, tmp_path):
    result = cli("export", checkpoints["text-classification"], tmp_path / "out", "--atol", "1e-12", "--no-optimize")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "Error: model.onnx disagrees with PyTorch" in result.stderr
    assert "left-padded rows" in result.stderr
    assert not (tmp_path / "out").exists()


def test_info_shows_task_labels_variants_and_figures(cli, exported):
    result = cli("info", exported["token-classification"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "task: token-classification" in out and "labels: O, B-PER, I-PER" in out
    assert "model_quantized.onnx" in out and "MB" in out
    assert "fused: EmbedLayerNormalization 1, Attention 2" in out
    assert "validated against PyTorch" in out and "fidelity to fp32: prob diff max" in out and "top1 agreement" in out
    assert '"task": "token-classification"' in cli("info", exported["token-classification"], "--json").stdout


def test_info_on_a_folder_that_is_not_an_export(cli, tmp_path):
    assert_one_line_error(cli("info", tmp_path), "not a distilbert-onnx export")


@pytest.mark.slow
@without_cuda  # the fp16 graph is validated on CUDA where there is one, and the output says so
def test_optimize_quantize_validate_on_an_existing_folder(cli, checkpoints, tmp_path):
    folder = tmp_path / "out"
    assert cli("export", checkpoints["fill-mask"], folder, "--no-optimize", "--no-quantize").exit_code == 0
    result = cli("optimize", folder, "--fp16")
    assert result.exit_code == 0, result.output
    assert "model_optimized.onnx: EmbedLayerNormalization 1, Attention 2" in result.stdout
    assert "model_optimized_fp16.onnx" in result.stdout and "UNVALIDATED" in result.stdout
    result = cli("quantize", folder)
    assert result.exit_code == 0, result.output
    assert "model_quantized.onnx: from" in result.stdout and "fidelity: prob diff max" in result.stdout
    info = cli("info", folder).stdout
    assert "fp16" in info and "UNVALIDATED: not validated on CUDA: no CUDA provider" in info and "on the CPU provider: max abs diff" in info
    result = cli("validate", folder)
    assert result.exit_code == 0, result.output
    assert "model_optimized_fp16.onnx: NOT VALIDATED on CUDA (no CUDA provider here); on the CPU provider max abs diff" in result.stdout


@pytest.mark.slow
def test_quantize_target_that_cannot_be_met(cli, exported, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(exported["text-classification"], folder)
    assert_one_line_error(cli("quantize", folder, "--max-prob-diff", "1e-9"), "misses the target", "max prob diff")
    assert_one_line_error(cli("quantize", folder, "--calibration-texts", tmp_path / "missing.txt"), "no calibration text file")


def test_validate_reports_every_failure(cli, exported, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(exported["text-classification"], folder)
    (folder / "model_quantized.onnx").write_bytes(b"not a model")
    result = cli("validate", folder)
    assert result.exit_code == 1
    assert "model_quantized.onnx: sha256 differs" in result.stderr and "Traceback" not in result.output


@pytest.mark.slow
def test_demo_checkpoint_exports_and_predicts(cli, tmp_path):
    result = cli("demo-checkpoint", tmp_path / "demo", "--task", "text-classification")
    assert result.exit_code == 0 and "mean nothing" in result.stdout
    assert {"config.json", "model.safetensors", "tokenizer.json", "vocab.txt"} <= {p.name for p in (tmp_path / "demo").iterdir()}
    assert_one_line_error(cli("demo-checkpoint", tmp_path / "demo"), "--force")
    assert cli("export", tmp_path / "demo", tmp_path / "out", "--no-quantize").exit_code == 0
    result = cli("predict", tmp_path / "out", "I love this!")
    assert result.exit_code == 0 and '"label": "' in result.stdout


@pytest.mark.parametrize("broken, key", [
    ({"variants": "nope"}, '"variants"'),
    ({"task": 3}, '"task"'),
    ({"variants": {"fp32": []}}, '"variants"."fp32"'),
    ({"variants": {"fp32": {"file": "model.onnx", "fidelity": {"mean_cosine": "high", "min_cosine": 1}}}},
     '"variants"."fp32"."fidelity"."mean_cosine"'),
])
def test_a_manifest_of_the_wrong_shape_is_one_error_naming_the_key(cli, exported, tmp_path, broken, key):
    import json

    from distilbert_onnx.manifest import MANIFEST_NAME

    folder = tmp_path / "broken"
    shutil.copytree(exported["text-classification"], folder)
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    (folder / MANIFEST_NAME).write_text(json.dumps({**manifest, **broken}))
    for command in (["info"], ["validate"], ["optimize"], ["predict", "--variant", "fp32"], ["benchmark"]):
        assert_one_line_error(cli(*command, folder, *(["hello"] if command[0] == "predict" else [])), MANIFEST_NAME, key)
