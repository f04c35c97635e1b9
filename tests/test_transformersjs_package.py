"""`package --for transformers.js`: the files and names transformers.js reads, the manifest that goes
along, the operator check (an int8 graph the web runtime cannot run is replaced by one it can,
measured against fp32), and clear errors. Whether transformers.js really reads the folders is
test_transformersjs_node.py's and test_transformersjs_browser.py's job."""

from __future__ import annotations

import json
import shutil

import pytest

import distilbert_onnx as dox
from distilbert_onnx.artifacts import sha256_file
from distilbert_onnx.manifest import Target, meets, read_manifest
from distilbert_onnx.transformersjs import package
from distilbert_onnx.transformersjs.operators import CHECKED_WITH, graph_operators
from js_helpers import JS_DIR, require


def test_the_folder_holds_what_transformers_js_reads(cli, exported, tmp_path):
    source = exported["text-classification"]
    result = cli("package", source, tmp_path / "web", "--for", "transformers.js")
    assert result.exit_code == 0, result.output
    out = tmp_path / "web"
    assert sorted(path.relative_to(out).as_posix() for path in out.rglob("*") if path.is_file()) == [
        "config.json", "distilbert_onnx.json", "onnx/model.onnx", "onnx/model_quantized.onnx",
        "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"]
    assert (out / "onnx/model.onnx").read_bytes() == (source / "model.onnx").read_bytes()
    assert (out / "onnx/model_quantized.onnx").read_bytes() == (source / "model_quantized.onnx").read_bytes()
    assert json.loads((out / "config.json").read_text()) == json.loads((source / "config.json").read_text())
    manifest = json.loads((out / "distilbert_onnx.json").read_text())
    assert manifest["package"]["dtypes"] == {"fp32": "fp32", "q8": "quantized"} and manifest["package"]["left_out"] == {}
    assert set(manifest["variants"]) == {"fp32", "quantized"}
    for record in manifest["variants"].values():
        assert record["sha256"] == sha256_file(out / record["file"])
    assert manifest["variants"]["quantized"]["fidelity"] == read_manifest(source).data["variants"]["quantized"]["fidelity"]
    assert "dtype q8: quantized" in result.output


def test_a_folder_without_int8_says_so_and_defaults_to_fp32(export_tiny, tmp_path):
    _, source = export_tiny("feature-extraction")
    record = package(source, tmp_path / "web")
    assert record["dtypes"] == {"fp32": "fp32"}
    assert "no int8 graph" in record["left_out"]["q8"]
    config = json.loads((tmp_path / "web" / "config.json").read_text())
    assert config["transformers.js_config"] == {"dtype": "fp32"}  # the page's default (q8) would ask for a missing file
    assert not (tmp_path / "web" / "onnx" / "model_quantized.onnx").exists()


def test_an_int8_graph_the_web_runtime_lacks_an_operator_for_is_made_again_from_model_onnx(exported, tmp_path):
    folder = tmp_path / "fused"
    shutil.copytree(exported["token-classification"], folder)
    dox.quantize(folder, graph="fused")
    fused_ops = {op for domain, op in graph_operators(folder / "model_quantized.onnx") if domain == "com.microsoft"}
    assert "QAttention" in fused_ops
    lines = []
    record = package(folder, tmp_path / "web", echo=lines.append, contrib_ops=frozenset(fused_ops - {"QAttention"}))
    assert record["dtypes"] == {"fp32": "fp32", "q8": "quantized"}
    assert any("com.microsoft.QAttention, which onnxruntime-web lacks" in line for line in lines)
    packaged = tmp_path / "web" / "onnx" / "model_quantized.onnx"
    assert {domain for domain, _ in graph_operators(packaged)} == {"ai.onnx"}
    int8 = json.loads((tmp_path / "web" / "distilbert_onnx.json").read_text())["variants"]["quantized"]
    assert int8["quantization"]["source_graph"] == "model.onnx"
    assert int8["replaces"]["why"] == "uses com.microsoft.QAttention, which onnxruntime-web lacks"
    assert int8["sha256"] == sha256_file(packaged)
    target = Target.from_data(int8["quantization"]["target"])
    assert target.binding and meets(int8["fidelity"], target)  # the token head's per-token probability bound


def test_user_mistakes_are_one_line_and_leave_nothing(cli, exported, tmp_path):
    result = cli("package", exported["multiple-choice"], tmp_path / "web", "--for", "transformers.js")
    assert result.exit_code == 1
    assert result.output.strip() == "Error: transformers.js has no pipeline for multiple-choice: a multiple-choice folder cannot be packaged for it"
    assert not (tmp_path / "web").exists()
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    result = cli("package", exported["fill-mask"], tmp_path / "taken", "--for", "transformers.js")
    assert result.exit_code == 1 and "pass --force" in result.output
    result = cli("package", tmp_path / "taken", tmp_path / "web", "--for", "transformers.js")
    assert result.exit_code == 1 and "not a distilbert-onnx export" in result.output
    assert cli("package", exported["fill-mask"], tmp_path / "web", "--for", "onnxruntime-web").exit_code == 2


@pytest.mark.slow
def test_export_packages_for_transformers_js_in_the_same_command(cli, make_tiny, tmp_path):
    checkpoint = make_tiny("fill-mask", name="fill_mask_for_web")
    result = cli("export", checkpoint, tmp_path / "out", "--no-optimize", "--no-openvino", "--transformers-js", tmp_path / "web")
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "web" / "distilbert_onnx.json").read_text())
    assert manifest["task"] == "fill-mask" and manifest["package"]["dtypes"] == {"fp32": "fp32", "q8": "quantized"}
    assert (tmp_path / "web" / "onnx" / "model_quantized.onnx").read_bytes() == (tmp_path / "out" / "model_quantized.onnx").read_bytes()


def test_the_checked_versions_are_the_ones_the_tests_install():
    lock = json.loads((JS_DIR / "package-lock.json").read_text())["packages"]
    assert {name: lock[f"node_modules/{name}"]["version"] for name in CHECKED_WITH} == CHECKED_WITH


def test_a_missing_runtime_is_a_skip_here_and_a_failure_under_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="node is not installed"):
        require("the Node check", "node is not installed")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        require("the Node check", "node is not installed")
    require("the Node check", None)
