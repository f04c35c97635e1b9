"""Export: every head to a validated graph with dynamic axes, the folder, atomic writes, errors."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import distilbert_onnx as dox
from distilbert_onnx.artifacts import sha256_file
from distilbert_onnx.manifest import MANIFEST_NAME, read_manifest
from distilbert_onnx.errors import ArtifactError, OptionError, ValidationError
from distilbert_onnx.tasks import TASK_NAMES, get_task


def export_fp32(checkpoint, output, **options):
    return dox.export(checkpoint, output, optimize=False, quantize=False, openvino=False, **options)


@pytest.mark.slow
@pytest.mark.parametrize("task", TASK_NAMES)
def test_every_head_exports_and_validates_on_new_shapes(checkpoints, tmp_path, task):
    result = export_fp32(checkpoints[task], tmp_path / "out")
    spec = get_task(task)
    manifest = read_manifest(result.folder).data
    assert manifest["task"] == task and result.variants == ["fp32"]
    validation = manifest["variants"]["fp32"]["validation"]
    assert validation["passed"] and validation["reference"] == "PyTorch" and validation["atol"] == 1e-4
    assert len(validation["probes"]) >= 2 and not any(p.endswith("x16") and p.startswith("2x") for p in validation["probes"])
    assert set(validation["max_abs_diff"]) == set(spec.output_names)
    assert max(validation["max_abs_diff"].values()) < 1e-5

    graph = onnx.load(str(result.folder / "model.onnx")).graph
    inputs = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.input}
    assert inputs == {name: list(axes) for name, axes in spec.inputs.items()}  # dynamic, no token_type_ids
    assert all(i.type.tensor_type.elem_type == onnx.TensorProto.INT64 for i in graph.input)
    assert [o.name for o in graph.output] == list(spec.output_names)
    for output in graph.output:
        dims = [d.dim_param for d in output.type.tensor_type.shape.dim]
        assert [d for d in dims if d] == [a for a in spec.outputs[output.name] if a in spec.input_axes]

    assert {"config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"} <= {
        p.name for p in result.folder.iterdir()}
    weights = manifest["source"]["weights"]
    assert weights == [{"file": "model.safetensors", "sha256": sha256_file(checkpoints[task] / "model.safetensors")}]
    assert manifest["variants"]["fp32"]["sha256"] == sha256_file(result.folder / "model.onnx")
    assert {"onnxruntime", "torch", "onnx"} <= set(manifest["tools"])


def test_graph_runs_on_any_batch_and_length(checkpoints, tmp_path):
    folder = export_fp32(checkpoints["multiple-choice"], tmp_path / "out").folder
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    for shape in [(1, 2, 3), (5, 4, 40)]:
        ids = np.ones(shape, dtype=np.int64)
        (logits,) = session.run(None, {"input_ids": ids, "attention_mask": ids})
        assert logits.shape == shape[:2]


def test_validation_failure_reports_everything_and_writes_nothing(checkpoints, tmp_path):
    output = tmp_path / "out"
    with pytest.raises(ValidationError) as error:
        export_fp32(checkpoints["question-answering"], output, atol=1e-12)
    report = error.value.report
    assert any(line.startswith("start_logits") for line in report)
    assert any(line.startswith("end_logits") for line in report)
    assert any("left-padded" in line for line in report) and any("right-padded" in line for line in report)
    assert not output.exists()
    assert list(tmp_path.iterdir()) == []  # no staging folder left behind


@pytest.mark.slow
def test_occupied_output_needs_force_and_is_kept_on_failure(checkpoints, tmp_path):
    checkpoint, output = checkpoints["text-classification"], tmp_path / "out"
    output.mkdir()
    (output / "keep.txt").write_text("mine")
    with pytest.raises(ArtifactError, match="--force"):
        export_fp32(checkpoint, output)
    with pytest.raises(ArtifactError, match="did not write"):  # --force replaces only an earlier export
        export_fp32(checkpoint, output, force=True)
    assert (output / "keep.txt").read_text() == "mine"
    (output / "keep.txt").unlink()
    export_fp32(checkpoint, output)  # an empty folder is fine
    first = (output / MANIFEST_NAME).read_text()
    with pytest.raises(ValidationError):
        export_fp32(checkpoint, output, atol=1e-12, force=True)
    assert (output / MANIFEST_NAME).read_text() == first  # a failed export leaves the old folder alone
    export_fp32(checkpoint, output, force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_output_that_is_a_file(checkpoints, tmp_path):
    output = tmp_path / "out"
    output.write_text("x")
    with pytest.raises(ArtifactError, match="not a folder"):
        export_fp32(checkpoints["text-classification"], output, force=True)


def test_empty_existing_folder_is_fine(checkpoints, tmp_path):
    (tmp_path / "out").mkdir()
    assert export_fp32(checkpoints["text-classification"], tmp_path / "out").folder.is_dir()


@pytest.mark.parametrize("opset", [14, 17])
def test_supported_opsets(checkpoints, tmp_path, opset):
    folder = export_fp32(checkpoints["token-classification"], tmp_path / "out", opset=opset).folder
    assert read_manifest(folder).data["opset"] == opset
    assert {o.version for o in onnx.load(str(folder / "model.onnx")).opset_import if o.domain in ("", "ai.onnx")} == {opset}


def test_unsupported_opset(checkpoints, tmp_path):
    with pytest.raises(OptionError, match="14 to 17"):
        export_fp32(checkpoints["token-classification"], tmp_path / "out", opset=20)
    assert not (tmp_path / "out").exists()


def test_exporter_chatter_stays_off_the_terminal(checkpoints, tmp_path, capfd):
    export_fp32(checkpoints["fill-mask"], tmp_path / "out")
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


def test_config_names_the_exported_head(checkpoints, tmp_path):
    folder = export_fp32(checkpoints["question-answering"], tmp_path / "out", task="feature-extraction").folder
    assert json.loads((folder / "config.json").read_text())["architectures"] == ["DistilBertModel"]
    assert read_manifest(folder).data["outputs"]["last_hidden_state"]["axes"] == ["batch_size", "sequence_length", 32]


def test_export_without_openvino_has_the_onnx_variants_only(exported):
    folder = exported["text-classification"]  # conftest exports with openvino=False
    assert list(read_manifest(folder).data["variants"]) == ["fp32", "optimized", "quantized"]
    assert sorted(path.name for path in folder.iterdir()) == [
        "config.json", "distilbert_onnx.json", "model.onnx", "model_optimized.onnx", "model_quantized.onnx",
        "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"]


def test_contradictory_options_are_refused_before_any_work(checkpoints, tmp_path):
    with pytest.raises(OptionError, match="--fp16 cannot go with --no-optimize"):
        dox.export(checkpoints["text-classification"], tmp_path / "out", optimize=False, fp16=True)
    with pytest.raises(OptionError, match="atol must be a positive tolerance"):
        export_fp32(checkpoints["text-classification"], tmp_path / "out", atol=-1.0)
    assert not (tmp_path / "out").exists()
