"""Fusion, fp16 and accuracy-aware int8 on exported folders; `validate` on every variant."""

from __future__ import annotations

import shutil

import numpy as np
import onnx
import pytest
from devices import needs_cuda, without_cuda

import distilbert_onnx as dox
from distilbert_onnx.checks.probes import check, make_probes
from distilbert_onnx.config import load_config
from distilbert_onnx.errors import ArtifactError, DeviceError, FusionError, OptionError, QuantizationError, ValidationError
from distilbert_onnx.manifest import read_manifest, write_manifest
from distilbert_onnx.onnx_build.optimize import expected_fusions
from distilbert_onnx.options import ATOL
from distilbert_onnx.checks.quantize_settings import QuantizeSettings
from distilbert_onnx.runtime.choice import fidelity_candidates
from distilbert_onnx.runtime.session import OnnxModel
from distilbert_onnx.tasks import TASK_NAMES, get_task
from distilbert_onnx.variants import VARIANTS, choose_variant


@pytest.fixture
def fp32_folder(checkpoints, tmp_path):
    """A fresh export of the text classifier with model.onnx only."""
    return dox.export(checkpoints["text-classification"], tmp_path / "out", optimize=False, quantize=False).folder


@pytest.mark.parametrize("task", TASK_NAMES)
def test_fused_graph_has_one_attention_two_skip_norms_one_gelu_per_layer(exported, task):
    folder = exported[task]
    record = read_manifest(folder).data["variants"]["optimized"]
    counts = record["fused_ops"]["counts"]
    assert counts["Attention"] == 2 and counts["SkipLayerNormalization"] == 4
    assert counts["BiasGelu"] == (3 if task == "fill-mask" else 2)
    assert counts["EmbedLayerNormalization"] == 1
    ops = {node.op_type for node in onnx.load(str(folder / "model_optimized.onnx")).graph.node}
    assert {"Attention", "SkipLayerNormalization", "BiasGelu", "EmbedLayerNormalization"} <= ops
    assert not {"Softmax", "Erf"} & ops  # nothing left unfused
    validation = record["validation"]
    assert validation["reference"] == "PyTorch" and max(validation["max_abs_diff"].values()) <= 1e-4


@pytest.mark.slow
def test_raw_attention_mask_is_what_keeps_left_padding_right(fp32_folder):
    """The optimizer's default mask-index format assumes right padding; ours must not."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    config, spec = load_config(fp32_folder), get_task("text-classification")
    options = FusionOptions("bert")  # default for bert: 1-D mask index
    model = optimize_model(str(fp32_folder / "model.onnx"), model_type="bert", num_heads=config.n_heads,
                           hidden_size=config.dim, optimization_options=options, opt_level=0)
    model.save_model_to_file(str(fp32_folder / "mask_index.onnx"))
    reference = OnnxModel(fp32_folder / "model.onnx").run
    probes = make_probes(spec, config.vocab_size, config.pad_token_id)
    with pytest.raises(ValidationError) as error:
        check(reference, OnnxModel(fp32_folder / "mask_index.onnx").run, spec, probes, 1e-4, "mask-index graph", "fp32")
    assert all("left-padded" in line for line in error.value.report)
    dox.optimize(fp32_folder)  # the raw mask passes the same probes
    check(reference, OnnxModel(fp32_folder / "model_optimized.onnx").run, spec, probes, 1e-4, "ours", "fp32")


@pytest.mark.slow
def test_optimize_an_existing_folder_validates_against_model_onnx(fp32_folder):
    records = dox.optimize(fp32_folder)
    assert list(records) == ["optimized"]
    manifest = read_manifest(fp32_folder).data
    assert manifest["variants"]["optimized"]["validation"]["reference"] == "model.onnx"
    assert manifest["variants"]["optimized"]["validation"]["atol"] == ATOL.default


@pytest.mark.slow
@without_cuda
def test_fp16_graph_is_written_and_marked_unvalidated_without_a_gpu(fp32_folder):
    records = dox.optimize(fp32_folder, fp16=True)
    record = records["fp16"]
    assert record["validation"]["passed"] is None and "no CUDA" in record["validation"]["reason"]
    cpu_check = record["validation"]["cpu_check"]  # checked on the CPU provider instead, within fp16 tolerance
    assert cpu_check["atol"] == 5e-2 and max(cpu_check["max_abs_diff"].values()) < 5e-2
    assert record["fused_ops"]["counts"]["FastGelu"] == 2 and record["fused_ops"]["counts"]["Attention"] == 2
    graph = onnx.load(str(fp32_folder / "model_optimized_fp16.onnx")).graph
    weights = [init for init in graph.initializer if init.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)]
    assert sum(init.data_type == onnx.TensorProto.FLOAT16 for init in weights) > len(weights) // 2
    assert all(output.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for output in graph.output)


@needs_cuda
def test_fp16_graph_is_validated_on_cuda(fp32_folder):
    record = dox.optimize(fp32_folder, fp16=True)["fp16"]
    assert record["validation"]["passed"] is True and record["validation"]["device"] == "cuda"
    assert max(record["validation"]["max_abs_diff"].values()) <= record["validation"]["atol"]


@pytest.mark.slow
def test_relu_model_fuses_without_gelu(make_tiny, tmp_path):
    folder = dox.export(make_tiny("text-classification", "relu", activation="relu"), tmp_path / "out", quantize=False).folder
    counts = read_manifest(folder).data["variants"]["optimized"]["fused_ops"]["counts"]
    assert counts["Attention"] == 2 and "BiasGelu" not in counts
    assert expected_fusions(get_task("text-classification"), load_config(folder)) == {
        "Attention": 2, "SkipLayerNormalization": 4}


@pytest.mark.slow
def test_incomplete_fusion_is_an_error_and_writes_nothing(fp32_folder, monkeypatch):
    from onnxruntime.transformers import fusion_options

    original = fusion_options.FusionOptions.__init__

    def no_attention(self, model_type):
        original(self, model_type)
        self.enable_attention = False

    monkeypatch.setattr(fusion_options.FusionOptions, "__init__", no_attention)
    with pytest.raises(FusionError, match="Attention 0 of 2"):
        dox.optimize(fp32_folder)
    assert not (fp32_folder / "model_optimized.onnx").exists()
    assert "optimized" not in read_manifest(fp32_folder).data["variants"]


@pytest.mark.parametrize("task", TASK_NAMES)
def test_int8_meets_its_target_and_matches_fp32_on_padded_probes(exported, task):
    folder = exported[task]
    record = read_manifest(folder).data["variants"]["quantized"]
    quantization, fidelity = record["quantization"], record["fidelity"]
    spec = get_task(task)
    if spec.compared_as == "mean-pooled":  # embeddings: cosine of sentence vectors
        assert quantization["target"] == {"min_cosine": 0.995, "min_worst_cosine": 0.98}
        assert fidelity["mean_cosine"] >= 0.995 and fidelity["min_cosine"] >= 0.98
    else:  # probabilities of classes, tokens or the answer span
        assert quantization["target"] == {"max_prob_diff": 0.1, "min_agreement": None}
        assert fidelity["max_prob_diff"] <= 0.1 and "mean_cosine" not in fidelity
    assert quantization["weights"].endswith("per output channel")
    assert set(quantization["candidates"]) == {"fused", "unfused"}
    assert quantization["source_graph"] == VARIANTS["optimized" if quantization["chosen"] == "fused" else "fp32"].file
    candidates = quantization["candidates"]  # the faster one is shipped
    assert quantization["chosen"] == min(candidates, key=lambda name: candidates[name]["latency_ms"])
    agreement = {"spans": "span_agreement", "mean-pooled": None}.get(spec.compared_as, "top1_agreement")
    assert {key for key in fidelity if key.endswith("_agreement")} == ({agreement} if agreement else set())
    # left- and right-padded rows: int8 stays close to fp32 at every real position
    config = load_config(folder)
    fp32, int8 = OnnxModel(folder / "model.onnx").run, OnnxModel(folder / "model_quantized.onnx").run
    for probe in make_probes(spec, config.vocab_size, config.pad_token_id):
        want, got = fp32(probe.feeds), int8(probe.feeds)
        mask = probe.attention_mask.reshape(len(probe.row_kinds), -1).astype(bool)
        for name in spec.output_names:
            for row, kind in enumerate(probe.row_kinds):  # each row's outputs at its real positions
                a, b = want[name].reshape(len(mask), -1)[row], got[name].reshape(len(mask), -1)[row]
                if name in spec.per_token_outputs():
                    a, b = a.reshape(mask.shape[1], -1)[mask[row]].ravel(), b.reshape(mask.shape[1], -1)[mask[row]].ravel()
                cosine = (a * b).sum() / (np.linalg.norm(a) * np.linalg.norm(b))
                assert cosine > 0.95, (name, probe.name, kind)


def test_the_target_of_each_head_needs_every_one_of_its_bounds():
    embeddings = QuantizeSettings.from_options(min_cosine=0.9, min_worst_cosine=0.8).for_task(get_task("feature-extraction"))
    assert embeddings.meets({"mean_cosine": 0.95, "min_cosine": 0.85})
    assert not embeddings.meets({"mean_cosine": 0.95, "min_cosine": 0.7})
    assert not embeddings.meets({"mean_cosine": 0.85, "min_cosine": 0.85})
    assert embeddings.describe_target() == "mean cosine >= 0.9 and worst cosine >= 0.8"
    classifier = QuantizeSettings.from_options(min_agreement=0.9).for_task(get_task("text-classification"))
    assert classifier.describe_target() == "max prob diff <= 0.1 and agreement >= 0.9"
    assert classifier.meets({"max_prob_diff": 0.1, "top1_agreement": 0.9})
    assert not classifier.meets({"max_prob_diff": 0.12, "top1_agreement": 1.0})
    assert classifier.shortfalls({"max_prob_diff": 0.12, "top1_agreement": 0.5}) == (
        "max prob diff 0.12 > 0.1 (by 0.02); agreement 0.5 < 0.9 (by 0.4)")
    answers = QuantizeSettings.from_options(min_agreement=0.9).for_task(get_task("question-answering"))
    assert not answers.meets({"max_prob_diff": 0.0, "span_agreement": 0.8})
    anything = QuantizeSettings.from_options(max_prob_diff=0.01, target=False).for_task(get_task("fill-mask"))
    assert anything.meets({"max_prob_diff": 0.9, "top1_agreement": 0.0}) and anything.describe_target() == "none"
    with pytest.raises(OptionError, match="--min-cosine does not apply to token-classification"):
        QuantizeSettings.from_options(min_cosine=0.9).for_task(get_task("token-classification"))


@pytest.mark.slow
def test_unreachable_target_is_reported_not_faked(fp32_folder):
    with pytest.raises(QuantizationError, match=r"misses the target .*best max prob diff .* > 1e-09 \(by "):
        dox.quantize(fp32_folder, max_prob_diff=1e-9)
    assert not (fp32_folder / "model_quantized.onnx").exists()
    assert "quantized" not in read_manifest(fp32_folder).data["variants"]


@pytest.mark.slow
def test_a_strict_target_keeps_the_most_sensitive_matmuls_in_fp32(fp32_folder):
    loose = dox.quantize(fp32_folder, target=False)
    assert loose["quantization"]["kept_fp32"] == []
    first = loose["fidelity"]
    target = first["max_prob_diff"] / 2
    strict = dox.quantize(fp32_folder, max_prob_diff=target)
    quantization = strict["quantization"]
    assert quantization["kept_fp32"] and 0 < quantization["kept_fp32_compute_share"] <= 0.5
    assert strict["fidelity"]["max_prob_diff"] <= target < first["max_prob_diff"]
    assert quantization["speed_cost_of_kept_fp32"] is not None
    int8_matmuls = {n.name for n in onnx.load(str(fp32_folder / "model_quantized.onnx")).graph.node}
    assert not set(quantization["kept_fp32"]) & {name for name in int8_matmuls if name.endswith("_quant")}


def weight_scale_shapes(path) -> list[list[int]]:
    """The shapes of an int8 graph's MatMul weight scales: one value per tensor, or one per output channel
    (the word-embedding table's per-row scales, `_row_scale`, are not weight scales of a MatMul)."""
    return [list(init.dims) for init in onnx.load(str(path)).graph.initializer
            if init.name.endswith("_scale") and not init.name.endswith("_row_scale")]


@pytest.mark.slow
def test_per_tensor_and_graph_choice(fp32_folder, exported):
    assert all(len(shape) == 1 and shape[0] > 1 for shape in weight_scale_shapes(
        exported["text-classification"] / "model_quantized.onnx"))  # the default: per output channel
    record = dox.quantize(fp32_folder, per_channel=False, graph="unfused", target=False)
    assert record["quantization"]["weights"] == "int8 symmetric, per tensor"
    shapes = weight_scale_shapes(fp32_folder / "model_quantized.onnx")
    assert shapes and all(shape in ([], [1]) for shape in shapes)
    assert record["quantization"]["source_graph"] == "model.onnx" and list(record["quantization"]["candidates"]) == ["unfused"]
    with pytest.raises(ArtifactError, match="optimize first"):
        dox.quantize(fp32_folder, graph="fused")


@pytest.mark.slow
def test_calibration_texts_from_a_file(fp32_folder, tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("First text about cats.\n\nSecond one, about dogs and the weather.\n")
    record = dox.quantize(fp32_folder, calibration_texts=texts, target=False)
    assert record["quantization"]["calibration"] == {"texts": 2, "source": "texts.txt"}
    assert record["fidelity"]["rows"] == 2
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(OptionError, match="empty"):
        dox.quantize(fp32_folder, calibration_texts=tmp_path / "empty.txt")
    with pytest.raises(OptionError, match="min-cosine"):
        dox.quantize(fp32_folder, min_cosine=1.5)


def test_int8_is_never_chosen_for_cuda(exported, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(exported["text-classification"], folder)
    assert choose_variant(folder, "cpu").name == "quantized"
    assert choose_variant(folder, "cuda").name == "optimized"
    with pytest.raises(DeviceError, match="no CUDA kernels"):
        choose_variant(folder, "cuda", "quantized")
    (folder / "model_optimized.onnx").unlink()
    assert choose_variant(folder, "cuda").name == "fp32"


def test_graph_tools_need_a_distilbert_onnx_folder(tmp_path):
    with pytest.raises(ArtifactError, match="not a distilbert-onnx export"):
        dox.quantize(tmp_path)
    with pytest.raises(ArtifactError, match="no folder"):
        dox.optimize(tmp_path / "missing")


@pytest.mark.slow
def test_validate_holds_the_int8_graph_to_its_recorded_target(exported, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(exported["text-classification"], folder)
    manifest = read_manifest(folder).data
    manifest["variants"]["quantized"]["quantization"]["target"]["max_prob_diff"] = 1e-9
    write_manifest(folder, manifest)
    with pytest.raises(ValidationError) as error:
        dox.validate(folder)
    assert len(error.value.report) == 1
    assert error.value.report[0].startswith("model_quantized.onnx: prob diff max")
    assert error.value.report[0].endswith("misses the target max prob diff <= 1e-09")


@pytest.mark.slow
def test_a_manifest_from_before_the_per_head_measures_still_validates_and_loads(exported, tmp_path):
    """Old records hold cosine targets and cosine figures for every head: validate says it judges the
    int8 graph by the head's default target instead; auto still judges the record as written."""
    folder = tmp_path / "copy"
    shutil.copytree(exported["text-classification"], folder)
    data = read_manifest(folder).data
    record = data["variants"]["quantized"]
    record["quantization"]["target"] = {"min_cosine": 0.995, "min_worst_cosine": 0.98}
    record["fidelity"] = {"rows": 196, "max_abs_diff": 0.01, "mean_cosine": 0.999, "min_cosine": 0.99, "top1_agreement": 1.0}
    manifest = write_manifest(folder, data)
    line = [line for line in dox.validate(folder) if line.startswith("model_quantized.onnx")][-1]
    assert "recorded target, mean cosine >= 0.995 and worst cosine >= 0.98, is in terms no longer measured" in line
    assert line.endswith("target max prob diff <= 0.1")
    candidates, excluded = fidelity_candidates(folder, manifest, "auto")
    assert "quantized" in [variant.name for variant in candidates] and "quantized" not in excluded
    record["fidelity"]["min_cosine"] = 0.5  # judged by its recorded cosine target, it misses
    assert "worst cosine 0.5 < 0.98" in fidelity_candidates(folder, write_manifest(folder, data), "auto")[1]["quantized"]


def test_validate_rechecks_every_variant(exported, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(exported["token-classification"], folder)
    lines = dox.validate(folder)
    assert any(line.startswith("model.onnx: max abs diff") and "PyTorch" in line for line in lines)
    assert any(line.startswith("model_optimized.onnx: max abs diff") for line in lines)
    assert any(line.startswith("model_quantized.onnx: prob diff max") for line in lines)
    data = bytearray((folder / "model_optimized.onnx").read_bytes())
    data[-100] ^= 0xFF
    (folder / "model_optimized.onnx").write_bytes(bytes(data))
    (folder / "model_quantized.onnx").unlink()
    with pytest.raises(ValidationError) as error:
        dox.validate(folder)
    assert error.value.report == [
        "model_optimized.onnx: sha256 differs from the manifest: the file changed since export",
        "model_quantized.onnx: the file is missing",
    ]
