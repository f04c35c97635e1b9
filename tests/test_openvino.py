"""The OpenVINO variants: written by `export` and by `openvino DIR`, validated, recorded, checked again by
`validate`, shown by `info`; the fidelity target enforced; clear errors without openvino or NNCF."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from export_helpers import Exports

import distilbert_onnx as dox
from distilbert_onnx.artifacts import sha256_file
from distilbert_onnx.checks.fidelity import calibration_batches, fidelity, reference_outputs
from distilbert_onnx.checks.probes import make_probes
from distilbert_onnx.manifest import Target, meets
from distilbert_onnx.config import load_config
from distilbert_onnx.manifest import read_manifest
from distilbert_onnx.runtime.openvino_model import OpenVinoModel, native_bf16
from distilbert_onnx.runtime.session import OnnxModel
from distilbert_onnx.samples import sample_texts
from distilbert_onnx.tasks import get_task

IR_FILES = ["openvino_model.bin", "openvino_model.xml", "openvino_model_int8.bin", "openvino_model_int8.xml"]
TASKS = ["feature-extraction", "question-answering", "multiple-choice"]

BLOCKER = """
import importlib.abc, sys
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError(f"No module named {{name!r}} (blocked)", name=name)
sys.meta_path.insert(0, Blocker())
from distilbert_onnx.cli import main
main(sys.argv[1:])
"""


@pytest.fixture(scope="module")
def exported(checkpoints, tmp_path_factory):
    """This module's exported folders: the default export with the OpenVINO IRs."""
    return Exports(checkpoints, tmp_path_factory.mktemp("exported_openvino"), openvino=True)


def run_blocked(blocked: list[str], *args) -> subprocess.CompletedProcess:
    code = textwrap.dedent(BLOCKER.format(blocked=blocked))
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def calibration_file(tmp_path_factory):
    """A short calibration file: the search tries several int8 IRs, each measured on these texts."""
    path = tmp_path_factory.mktemp("texts") / "texts.txt"
    path.write_text("\n".join(sample_texts()[:24]) + "\n", encoding="utf-8")
    return path


def folder_copy(source, target):
    shutil.copytree(source, target)
    return target


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_export_writes_validated_and_recorded_openvino_variants(exported, task):
    folder = exported[task]
    manifest = read_manifest(folder).data
    assert set(IR_FILES) <= {path.name for path in folder.iterdir()}
    spec, config = get_task(task), load_config(folder)
    for name, xml in (("openvino", "openvino_model.xml"), ("openvino-int8", "openvino_model_int8.xml")):
        record = manifest["variants"][name]
        weights = folder / xml.replace(".xml", ".bin")
        assert record["file"] == xml and record["sha256"] == sha256_file(folder / xml)
        assert record["weights"] == {"file": weights.name, "sha256": sha256_file(weights)}
        assert record["size_bytes"] == (folder / xml).stat().st_size + weights.stat().st_size
    fp32_ir = manifest["variants"]["openvino"]
    assert fp32_ir["precision"] == "fp32"
    assert fp32_ir["validation"]["passed"] and fp32_ir["validation"]["reference"] == "PyTorch"
    assert max(fp32_ir["validation"]["max_abs_diff"].values()) <= fp32_ir["validation"]["atol"]
    bf16 = fp32_ir["bf16"]
    target = ({"min_cosine": 0.995, "min_worst_cosine": 0.98} if spec.compared_as == "mean-pooled"
              else {"max_prob_diff": 0.1, "min_agreement": None})
    if native_bf16():
        assert bf16["target"] == target
        assert bf16["meets_target"] == meets(bf16["fidelity"], Target(target))
        assert bf16["fidelity"]["max_abs_diff"] > 0  # really run in bf16, not fp32
    else:
        assert bf16["fidelity"] is None and "no native bf16" in bf16["reason"]
    int8 = manifest["variants"]["openvino-int8"]
    quantization = int8["quantization"]
    assert int8["precision"] == "int8" and quantization["method"] == "NNCF post-training static quantization"
    assert quantization["target"] == target and meets(int8["fidelity"], Target(target))
    if spec.compared_as == "mean-pooled":
        assert int8["fidelity"]["mean_cosine"] >= 0.995 and int8["fidelity"]["min_cosine"] >= 0.98
    else:
        assert int8["fidelity"]["max_prob_diff"] <= 0.1
    assert quantization["calibration"]["texts"] == len(sample_texts())
    assert int8["probe_check"]["passed"] and set(int8["probe_check"]["max_abs_diff"]) == set(spec.output_names)

    # The IR runs like model.onnx; the int8 IR is really int8 (not fp32) and as faithful as recorded.
    probe = make_probes(spec, config.vocab_size, config.pad_token_id)[0]
    want = OnnxModel(folder / "model.onnx").run(probe.feeds)
    got = OpenVinoModel(folder / "openvino_model.xml", precision="f32", cache=False).run(probe.feeds)
    for output in spec.output_names:
        np.testing.assert_allclose(got[output], want[output], atol=1e-4)
    assert "FakeQuantize" in (folder / "openvino_model_int8.xml").read_text()
    batches = calibration_batches(folder, spec, config, sample_texts())
    assert int8["inference_precision"] in (("bf16", "f32") if native_bf16() else ("f32",))
    figures = fidelity(reference_outputs(OnnxModel(folder / "model.onnx").run, batches),
                       OpenVinoModel(folder / "openvino_model_int8.xml", precision=int8["inference_precision"], cache=False).run, spec, batches)
    assert figures == pytest.approx(int8["fidelity"], abs=1e-6)  # recorded as it runs


@pytest.fixture(scope="module")
def one_layer(make_tiny, calibration_file, tmp_path_factory):
    """A one-layer checkpoint exported by the CLI in a child process (all its output captured), with
    the OpenVINO variants calibrated on the short calibration file: few ops, so searches are quick."""
    checkpoint = make_tiny("feature-extraction", name="one_layer", n_layers=1, seed=7)
    folder = tmp_path_factory.mktemp("one_layer") / "out"
    done = subprocess.run([sys.executable, "-m", "distilbert_onnx.cli", "export", str(checkpoint), str(folder),
                           "--no-optimize", "--calibration-texts", str(calibration_file)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return folder, done


@pytest.mark.slow
def test_export_output_is_only_its_own_lines(one_layer):
    """NNCF's progress bars and OpenVINO's logs stay off the terminal: stdout holds the summary."""
    folder, done = one_layer
    assert done.stdout.startswith("exported feature-extraction to") and "openvino-int8" in done.stdout
    assert all(line.startswith(("- ", "  done in")) for line in done.stderr.splitlines()), done.stderr
    assert "- quantize the IR to int8 with NNCF on 24 calibration texts" in done.stderr


@pytest.mark.slow
def test_openvino_command_meets_a_target_the_all_int8_ir_misses(cli, one_layer, calibration_file, tmp_path):
    folder = folder_copy(one_layer[0], tmp_path / "folder")
    first = read_manifest(folder).data["variants"]["openvino-int8"]["quantization"]["search"][0]["fidelity"]
    target = round(1 - (1 - first["mean_cosine"]) / 4, 9)  # a quarter of all-int8's loss
    result = cli("openvino", folder, "--min-cosine", target, "--min-worst-cosine", 0.9, "--calibration-texts", calibration_file)
    assert result.exit_code == 0, result.output
    int8 = read_manifest(folder).data["variants"]["openvino-int8"]
    quantization = int8["quantization"]
    assert quantization["kept_fp32"] and quantization["target"]["min_cosine"] == target
    assert int8["fidelity"]["mean_cosine"] >= target and quantization["calibration"]["texts"] == 24
    assert 0 < quantization["kept_fp32_compute_share"] <= 0.5
    assert [step["kept_fp32"] for step in quantization["search"]][0] == 0
    assert f"{len(quantization['kept_fp32'])} op(s) kept in fp32" in result.stdout
    assert "openvino_model_int8.xml + openvino_model_int8.bin" in result.stdout
    assert cli("validate", folder, "--calibration-texts", calibration_file).exit_code == 0


@pytest.mark.slow
def test_an_impossible_target_is_an_error_with_require_int8_and_writes_nothing(cli, one_layer, calibration_file, tmp_path):
    folder = folder_copy(one_layer[0], tmp_path / "folder")
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    impossible = ["--min-cosine", 1.0, "--min-worst-cosine", 1.0, "--calibration-texts", calibration_file]
    result = cli("openvino", folder, *impossible, "--require-int8")
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "misses the target" in errors[0] and "Traceback" not in result.output
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before  # same IRs and manifest, no temp folder
    # Without --require-int8 the fp32 IR is made again and the folder keeps its earlier int8 IR, saying so.
    kept = cli("openvino", folder, *impossible)
    assert kept.exit_code == 0, kept.output
    assert "- openvino-int8 not rebuilt (the folder keeps its earlier one): the OpenVINO int8 IR misses" in kept.stderr
    assert (folder / "openvino_model_int8.xml").read_bytes() == before["openvino_model_int8.xml"]
    manifest = read_manifest(folder).data
    assert "left_out" not in manifest and manifest["variants"]["openvino-int8"]["sha256"] == sha256_file(folder / "openvino_model_int8.xml")


@pytest.mark.slow
def test_export_leaves_out_the_int8_variants_that_miss_and_writes_the_rest(cli, checkpoints, tmp_path):
    out = tmp_path / "out"
    result = cli("export", checkpoints["text-classification"], out, "--no-optimize", "--max-prob-diff", "1e-9",
                 "--calibration-texts", write_texts(tmp_path, 12))
    assert result.exit_code == 0, result.output
    left = [line for line in result.stderr.splitlines() if "left out" in line]
    assert [line.split()[1] for line in left] == ["quantized", "openvino-int8"]
    assert all("max prob diff" in line and "(by " in line for line in left)
    manifest = read_manifest(out).data
    assert set(manifest["variants"]) == {"fp32", "openvino"} and set(manifest["left_out"]) == {"quantized", "openvino-int8"}
    assert not (out / "openvino_model_int8.xml").exists() and (out / "openvino_model.xml").is_file()
    assert dox.load(out).variant in ("fp32", "openvino")


@pytest.mark.slow
def test_openvino_int8_calibrated_on_rows_and_gated_on_the_metric(cli, one_layer, tmp_path):
    folder = folder_copy(one_layer[0], tmp_path / "folder")
    texts = sample_texts()
    with (tmp_path / "rows.csv").open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["body"], *([text] for text in texts[:20])])
    (tmp_path / "eval.jsonl").write_text("".join(
        json.dumps({"body": text, "topic": index % 2}) + "\n" for index, text in enumerate(texts[20:60])), encoding="utf-8")
    result = cli("openvino", folder, "--calibration-data", tmp_path / "rows.csv", "--calibration-rows", 12,
                 "--eval-data", tmp_path / "eval.jsonl", "--label-column", "topic", "--text-column", "body",
                 "--max-metric-drop", 100)
    assert result.exit_code == 0, result.output
    int8 = read_manifest(folder).data["variants"]["openvino-int8"]
    calibration = int8["quantization"]["calibration"]
    assert calibration["rows_used"] == 12 and calibration["rows_in_file"] == 20
    assert calibration["ranges_from"] == "the rows of the calibration data" and int8["fidelity"]["rows"] == 12
    gate = int8["gate"]
    assert gate["meets"] and gate["rows"] == 40 and gate["data_sha256"] == sha256_file(tmp_path / "eval.jsonl")
    assert gate["metric"] == "knn_accuracy" and gate["fp32_value"] == pytest.approx(gate["value"] + gate["drop"])
    assert "metric gate: knn_accuracy" in result.stdout


def write_texts(folder, count):
    path = folder / "texts.txt"
    path.write_text("\n".join(sample_texts()[:count]) + "\n", encoding="utf-8")
    return path


@pytest.mark.slow
def test_validate_and_info_cover_the_openvino_files(cli, exported, tmp_path):
    folder = exported["token-classification"]
    result = cli("validate", folder)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    for name in IR_FILES:
        assert f"{name}: present, sha256 matches" in lines
    assert any(line.startswith("openvino_model.xml: fp32 inference: max abs diff") for line in lines)
    assert any(line.startswith("openvino_model.xml in bf16: bf16") for line in lines)
    assert any(line.startswith("openvino_model_int8.xml: runs the padded probes; prob diff max") for line in lines)
    info = cli("info", folder).stdout
    for name in ("fp32", "optimized", "quantized", "openvino", "openvino-int8"):
        assert any(line.split()[:1] == [name] and " MB " in line for line in info.splitlines()), (name, info)
    assert "+ openvino_model_int8.bin (weights)" in info and "op(s) kept in fp32" in info
    assert ("bf16 fidelity to fp32:" if native_bf16() else "bf16: not measured") in info

    changed = folder_copy(folder, tmp_path / "changed")
    with open(changed / "openvino_model_int8.bin", "r+b") as handle:
        handle.seek(100)
        handle.write(b"\xff\xfe")
    result = cli("validate", changed)
    assert result.exit_code == 1 and "openvino_model_int8.bin: sha256 differs" in result.stderr


@pytest.mark.slow
def test_export_without_openvino_and_validate_info_on_such_folders(cli, checkpoints, tmp_path):
    result = cli("export", checkpoints["fill-mask"], tmp_path / "out", "--no-openvino", "--no-optimize")
    assert result.exit_code == 0, result.output
    assert "OpenVINO" not in result.stderr and not list((tmp_path / "out").glob("openvino_*"))
    assert list(read_manifest(tmp_path / "out").data["variants"]) == ["fp32", "quantized"]
    info = cli("info", tmp_path / "out").stdout
    assert "openvino" not in info.split("variants:")[1]
    validated = cli("validate", tmp_path / "out")
    assert validated.exit_code == 0 and "openvino" not in validated.stdout

    added = cli("openvino", tmp_path / "out", "--no-int8")
    assert added.exit_code == 0, added.output
    assert list(read_manifest(tmp_path / "out").data["variants"]) == ["fp32", "quantized", "openvino"]
    assert "validated against model.onnx" in added.stdout


@pytest.mark.slow
def test_export_says_the_openvino_variants_are_skipped_when_openvino_is_missing(checkpoints, tmp_path):
    done = run_blocked(["openvino", "nncf"], "export", checkpoints["multiple-choice"], tmp_path / "out", "--no-optimize")
    assert done.returncode == 0, done.stderr
    assert "OpenVINO variants skipped" in done.stderr and "pip install 'distilbert-onnx[openvino]'" in done.stderr
    assert not list((tmp_path / "out").glob("openvino_*"))
    done = run_blocked(["openvino", "nncf"], "openvino", tmp_path / "out")
    assert done.returncode == 1 and done.stderr.strip().splitlines()[-1].startswith("Error: the OpenVINO variants need openvino")
    done = run_blocked(["openvino"], "validate", tmp_path / "out")
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_without_nncf_the_int8_ir_is_skipped_or_an_error(exported, tmp_path):
    folder = folder_copy(exported["fill-mask"], tmp_path / "folder")
    before = (folder / "distilbert_onnx.json").read_bytes()
    done = run_blocked(["nncf"], "openvino", folder)
    assert done.returncode == 1, done.stderr
    assert "NNCF, which is not installed: pip install 'distilbert-onnx[openvino-build]'" in done.stderr.splitlines()[-1]
    assert (folder / "distilbert_onnx.json").read_bytes() == before
    done = run_blocked(["openvino"], "validate", folder)
    assert done.returncode == 0, done.stderr
    assert "openvino_model.xml: NOT CHECKED: the OpenVINO variants need openvino" in done.stdout


@pytest.mark.parametrize("args, message", [
    (["--min-cosine", "1.5"], "min-cosine must be in (0, 1]"),
    (["--calibration-texts", "empty.txt"], "the calibration texts are empty"),
    (["--calibration-texts", "missing.txt"], "no calibration text file at"),
])
def test_openvino_command_errors(cli, exported, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty.txt").write_text("\n")
    result = cli("openvino", exported["feature-extraction"], *args)
    assert result.exit_code == 1 and message in result.stderr, result.output


def test_openvino_command_on_a_folder_that_is_not_an_export(cli, tmp_path):
    result = cli("openvino", tmp_path)
    assert result.exit_code == 1 and "is not a distilbert-onnx export" in result.stderr


@pytest.mark.slow
def test_default_export_has_every_cpu_variant_and_nothing_else(exported):
    folder = exported["text-classification"]
    manifest = read_manifest(folder).data
    assert list(manifest["variants"]) == ["fp32", "optimized", "quantized", "openvino", "openvino-int8"]
    # The auto choice was timed on this machine at export, so a first load here decides at once.
    [choice] = manifest["auto_choice"].values()
    assert choice["variant"] in manifest["variants"] and set(choice["latency_ms"]) <= set(manifest["variants"])
    assert sorted(path.name for path in folder.iterdir()) == [
        "config.json", "distilbert_onnx.json", "model.onnx", "model_optimized.onnx", "model_quantized.onnx",
        "openvino_model.bin", "openvino_model.xml", "openvino_model_int8.bin", "openvino_model_int8.xml",
        "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"]
