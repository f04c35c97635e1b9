"""The OpenVINO backend on tiny exports: the same results as onnxruntime for every task, the precision
rule, the choice of backend and variant (with openvino blocked from import in a real subprocess), the
auto choice per machine and its cache, and `benchmark` / `predict` on folders with OpenVINO files.
No timing is asserted."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("openvino")

import distilbert_onnx as dox  # noqa: E402
from distilbert_onnx.manifest import read_manifest, update_manifest, write_manifest  # noqa: E402
from distilbert_onnx.benchmark import benchmark_folder  # noqa: E402
from distilbert_onnx.errors import ArtifactError, DeviceError, OptionError  # noqa: E402
from distilbert_onnx.runtime.backends import check_backend  # noqa: E402
from distilbert_onnx.runtime.choice import CHOICES_FILE, fidelity_candidates, record_choice  # noqa: E402
from distilbert_onnx.runtime.openvino_model import native_bf16  # noqa: E402
from runtime_helpers import assert_same  # noqa: E402
from import_blocker import BLOCKER  # noqa: E402

INPUTS = {
    "text-classification": ((["I love Paris.", {"text": "a", "text_pair": "b"}],), {"top_k": None}),
    "token-classification": ((["Maria Gonzalez lives in Paris.", "John Smith flew to London."],), {"aggregation_strategy": "simple"}),
    "question-answering": ((), {"question": "Where does Maria live?", "context": "Maria Gonzalez lives in Paris."}),
    "fill-mask": ((["Paris is the [MASK] of France.", "John flew to [MASK]."],), {}),
    "multiple-choice": (([{"prompt": "Maria lives in", "choices": ["Paris", "Rome", "Geneva"]},
                          {"prompt": "The capital of Italy is", "choices": ["Rome", "Paris"]}],), {}),
    "feature-extraction": ((["Hello", "The capital of France is Paris; the capital of Italy is Rome."],), {"pooling": "mean"}),
}
ALL_TASKS = list(INPUTS)
# Built to a target bf16 cannot meet: `openvino` then computes in f32, comparable with onnxruntime's fp32.
F32 = {"int8": False, "f32_only": True}


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Each test gets its own per-user cache (auto choices, OpenVINO's compiled models)."""
    monkeypatch.setenv("DISTILBERT_ONNX_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def classifier_copy(openvino_exported, tmp_path):
    """A private copy of the text-classification folder with both OpenVINO variants, to change."""
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(openvino_exported("text-classification"), folder)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("task", ALL_TASKS)
def test_openvino_pipelines_equal_onnxruntime(openvino_exported, task):
    folder = openvino_exported(task, **F32)
    ours = dox.load(folder, variant="openvino")
    reference = dox.load(folder, variant="fp32")
    assert (ours.backend, ours.variant, ours.precision) == ("openvino", "openvino", "f32")
    assert (reference.backend, reference.variant) == ("onnxruntime", "fp32")
    args, kwargs = INPUTS[task]
    assert_same(ours(*args, **kwargs), reference(*args, **kwargs), atol=1e-4)
    # Other batch sizes and lengths through the same compiled model (dynamic axes)
    assert_same(ours(*args, batch_size=1, **kwargs), reference(*args, **kwargs), atol=1e-4)


@pytest.mark.slow
def test_sequence_padding_stays_within_the_models_maximum(export_tiny, tmp_path):
    """The OpenVINO model pads lengths to a multiple of 16 tokens, never past max_position_embeddings (72)."""
    import shutil

    from export_helpers import add_openvino

    folder = tmp_path / "short"
    shutil.copytree(export_tiny("token-classification", max_position_embeddings=72)[1], folder)
    add_openvino(folder, **F32)
    ours, reference = dox.load(folder, variant="openvino"), dox.load(folder, variant="fp32")
    text = "Maria Gonzalez lives in Paris and works for the United Nations in Geneva. " * 5  # about 66 tokens
    assert 64 < len(ours.context.tokenizer.encode([text])[0].ids) <= 72
    assert_same(ours(text, aggregation_strategy="none"), reference(text, aggregation_strategy="none"), atol=1e-4)
    fed = ours.model._requests.request.get_input_tensor(0).shape  # what OpenVINO last ran on
    assert fed[-1] == 72
    ours("Hello")
    assert list(ours.model._requests.request.get_input_tensor(0).shape) == [1, 16]


@pytest.mark.slow
def test_int8_ir_runs_close_to_fp32(openvino_exported):
    folder = openvino_exported("text-classification")
    ours = dox.load(folder, variant="openvino-int8", backend="openvino")
    reference = dox.load(folder, variant="fp32")
    assert ours.precision in ("int8+f32", "int8+bf16")
    texts = ["I love Paris.", "The battery died after an hour.", "Hello"]
    assert_same(ours(texts), reference(texts), atol=0.05)


@pytest.mark.slow
def test_bf16_only_where_native_and_recorded_as_meeting_the_target(openvino_exported):
    allowed = dox.load(openvino_exported("feature-extraction", int8=False), variant="openvino")  # the default target
    refused = dox.load(openvino_exported("feature-extraction", **F32), variant="openvino")
    assert allowed.precision == ("bf16" if native_bf16() else "f32")
    assert refused.precision == "f32"
    assert "precision=f32" in repr(refused) and "backend=openvino" in repr(refused)


def test_compiled_model_is_cached_and_reused(openvino_exported, own_cache):
    folder = openvino_exported("text-classification", **F32)
    dox.load(folder, variant="openvino")
    blobs = sorted((own_cache / "openvino").rglob("*.blob"))
    assert len(blobs) == 1 and blobs[0].parent.name == "f32"
    written = blobs[0].stat().st_mtime_ns
    again = dox.load(folder, variant="openvino")
    assert sorted((own_cache / "openvino").rglob("*.blob")) == blobs and blobs[0].stat().st_mtime_ns == written
    assert again("I love Paris.")[0]["label"]


@pytest.mark.slow
def test_an_unusable_cache_folder_is_said_and_not_fatal(openvino_exported, tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("DISTILBERT_ONNX_CACHE", str(blocker / "cache"))
    with caplog.at_level(logging.INFO, logger="distilbert_onnx"):
        pipe = dox.load(openvino_exported("text-classification"))
    assert pipe("I love Paris.")[0]["label"]
    assert "could not cache the choice" in caplog.text
    assert "compiled-model cache disabled" in caplog.text  # the OpenVINO candidates were compiled without it


def test_backend_and_variant_must_agree(openvino_exported):
    folder = openvino_exported("text-classification", **F32)
    with pytest.raises(OptionError, match="runs on the openvino backend, not onnxruntime"):
        dox.load(folder, variant="openvino", backend="onnxruntime")
    with pytest.raises(OptionError, match="runs on the onnxruntime backend, not openvino"):
        dox.load(folder, variant="quantized", backend="openvino")
    with pytest.raises(OptionError, match="unknown backend 'tensorrt'"):
        dox.load(folder, backend="tensorrt")
    pipe = dox.load(folder, backend="onnxruntime")
    assert (pipe.backend, pipe.variant) == ("onnxruntime", "quantized")  # the onnxruntime rule
    pipe = dox.load(folder, backend="openvino")
    assert (pipe.backend, pipe.variant) == ("openvino", "openvino")


def test_openvino_variants_are_refused_on_cuda(openvino_exported):
    from distilbert_onnx.variants import choose_variant

    folder = openvino_exported("text-classification", **F32)
    with pytest.raises(DeviceError, match="runs on OpenVINO's CPU plugin only, not cuda"):
        choose_variant(folder, "cuda", "openvino")
    with pytest.raises(DeviceError, match="OpenVINO backend runs on the CPU only"):
        check_backend("openvino", "cuda")


def test_folder_without_openvino_files(exported):
    with pytest.raises(ArtifactError, match="no openvino variant.*distilbert-onnx openvino DIR"):
        dox.load(exported["text-classification"], variant="openvino")
    with pytest.raises(ArtifactError, match="no openvino variant that meets"):
        dox.load(exported["text-classification"], backend="openvino")


# --- auto: the choice per machine ---------------------------------------------------------------


@pytest.mark.slow
def test_auto_measures_once_then_reuses_the_cached_choice(openvino_exported, own_cache, caplog):
    folder = openvino_exported("text-classification")
    with caplog.at_level(logging.INFO, logger="distilbert_onnx"):
        first = dox.load(folder)
    assert "measured now" in caplog.text
    choices = json.loads((own_cache / CHOICES_FILE).read_text())
    (record,) = choices.values()
    assert record["variant"] == first.variant
    assert set(record["latency_ms"]) >= {"openvino-int8", "quantized"}
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="distilbert_onnx"):
        second = dox.load(folder)
    assert "measured now" not in caplog.text and "measured on this machine before" in caplog.text
    assert second.variant == first.variant


@pytest.mark.slow
def test_auto_uses_a_choice_recorded_in_the_manifest(classifier_copy, caplog):
    folder = classifier_copy
    manifest = read_manifest(folder)
    key, recorded = record_choice(folder, manifest)
    assert list(recorded) == [key]
    # The recorded choice is used as recorded, not measured again: make it one measurement would not pick.
    recorded[key] = {**recorded[key], "variant": "quantized", "latency_ms": {"quantized": 1.0, "openvino-int8": 2.0}}
    write_manifest(folder, {**manifest.data, "auto_choice": recorded})
    with caplog.at_level(logging.INFO, logger="distilbert_onnx"):
        pipe = dox.load(folder)
    assert pipe.variant == "quantized"
    assert "recorded in the folder's manifest" in caplog.text and "measured now" not in caplog.text


@pytest.mark.slow
def test_choose_command_records_the_choice_in_the_manifest(cli, classifier_copy):
    folder = classifier_copy
    done = cli("choose", str(folder), "--threads", "1")
    assert done.exit_code == 0, done.output
    (record,) = read_manifest(folder).data["auto_choice"].values()
    assert done.stdout.strip() == record["variant"] and record["machine"]["threads"] == 1
    assert "recorded for" in done.stderr


def test_choose_command_on_a_folder_with_nothing_to_choose(cli, export_tiny):
    _, folder = export_tiny("text-classification")  # model.onnx only
    done = cli("choose", str(folder))
    assert done.exit_code == 1 and "Error:" in done.output and "nothing to choose between" in done.output


@pytest.mark.slow
def test_auto_never_picks_a_variant_that_misses_the_target(classifier_copy, caplog):
    """A manifest recording an int8 IR that misses the folder's target (the builder leaves such a
    variant out; a folder edited by hand or made by another tool can still hold one)."""
    folder = classifier_copy
    poor = {"rows": 24, "max_abs_diff": 0.5, "max_prob_diff": 0.3, "mean_prob_diff": 0.05, "top1_agreement": 0.8}
    record = read_manifest(folder).data["variants"]["openvino-int8"]
    update_manifest(folder, {"openvino-int8": {**record, "fidelity": poor}})
    candidates, excluded = fidelity_candidates(folder, read_manifest(folder), "auto")
    assert "openvino-int8" not in [variant.name for variant in candidates]
    assert "misses the target: max prob diff 0.3 > 0.1 (by 0.2)" in excluded["openvino-int8"]
    with caplog.at_level(logging.INFO, logger="distilbert_onnx"):
        pipe = dox.load(folder)
    assert pipe.variant != "openvino-int8"
    assert "not a candidate: openvino-int8" in caplog.text


@pytest.mark.slow
def test_auto_never_picks_a_variant_that_misses_its_metric_gate(classifier_copy, caplog):
    folder = classifier_copy
    data = read_manifest(folder).data
    gate = {"metric": "accuracy", "value": 80.0, "fp32_value": 81.0, "drop": 1.0, "drop_interval": [0.4, 1.6],
            "max_drop": 0.5, "changed_vs_fp32": 2.0, "data": "held_out.csv", "data_sha256": "0" * 64, "rows": 200,
            "meets": False}
    data["variants"]["openvino-int8"]["gate"] = gate
    data["variants"]["quantized"]["gate"] = {**gate, "value": 80.8, "drop": 0.2, "drop_interval": [-0.1, 0.45], "meets": True}
    manifest = write_manifest(folder, data)
    candidates, excluded = fidelity_candidates(folder, manifest, "auto")
    names = [variant.name for variant in candidates]
    assert "quantized" in names and "openvino-int8" not in names
    assert excluded["openvino-int8"] == ("it misses its metric gate: accuracy drop 1.00 (95% interval up to 1.60) > 0.5 "
                                         "points on held_out.csv")
    with caplog.at_level(logging.INFO, logger="distilbert_onnx"):
        assert dox.load(folder).variant != "openvino-int8"
    del data["variants"]["openvino-int8"]["gate"]  # ungated beside a gated int8 variant: not a candidate either
    manifest = write_manifest(folder, data)
    assert "not checked against a metric gate" in fidelity_candidates(folder, manifest, "auto")[1]["openvino-int8"]


def test_auto_without_openvino_files_keeps_the_onnxruntime_rule(exported, caplog):
    with caplog.at_level(logging.INFO, logger="distilbert_onnx"):
        pipe = dox.load(exported["feature-extraction"])
    assert (pipe.variant, pipe.backend) == ("quantized", "onnxruntime")
    assert "no OpenVINO variant" in caplog.text


# --- openvino not installed: a real subprocess where it cannot be imported -----------------------

WITHOUT_OPENVINO = textwrap.dedent(BLOCKER.format(blocked=["openvino", "nncf"])) + textwrap.dedent("""
import json, logging, sys
import distilbert_onnx as dox
from distilbert_onnx.benchmark import benchmark_folder
from distilbert_onnx.errors import MissingExtraError
logging.basicConfig(level=logging.INFO, format="%(message)s")
folder = sys.argv[1]
pipe = dox.load(folder)
report = {"auto": [pipe.variant, pipe.backend], "result": pipe("I love Paris.")[0]["label"]}
for options in ({"backend": "openvino"}, {"variant": "openvino-int8"}):
    try:
        dox.load(folder, **options)
    except MissingExtraError as exc:
        report[json.dumps(options)] = str(exc)
notes = []
rows = benchmark_folder(folder, warmup=0, min_runs=1, min_seconds=0, echo=notes.append)["rows"]
report["benchmarked"] = [row["variant"] for row in rows]
report["notes"] = notes
print(json.dumps(report))
""")


@pytest.mark.slow
def test_without_openvino_installed(openvino_exported):
    done = subprocess.run([sys.executable, "-c", WITHOUT_OPENVINO, str(openvino_exported("text-classification"))],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["auto"] == ["quantized", "onnxruntime"]
    assert "openvino is not installed" in done.stderr
    for options in ('{"backend": "openvino"}', '{"variant": "openvino-int8"}'):
        assert "pip install 'distilbert-onnx[openvino]'" in report[options]
    assert report["benchmarked"] == ["fp32", "optimized", "quantized"]
    assert any("openvino, openvino-int8 not measured" in note for note in report["notes"])


def test_openvino_blocker_blocks():
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(BLOCKER.format(blocked=["openvino"])) + "import openvino"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "blocked" in done.stderr


# --- benchmark and predict ---------------------------------------------------------------------


@pytest.mark.slow
def test_benchmark_measures_the_openvino_variants_side_by_side(openvino_exported):
    result = benchmark_folder(openvino_exported("text-classification"), batch_sizes=(1, 2), sequence_lengths=(8,),
                              warmup=0, min_runs=2, min_seconds=0)
    variants = [row["variant"] for row in result["rows"]]
    assert variants == [name for name in ("fp32", "optimized", "quantized", "openvino", "openvino-int8") for _ in (1, 2)]
    assert set(result["precisions"]) == set(variants)
    assert result["precisions"]["openvino-int8"].startswith("int8+")
    assert "openvino" in result["machine"]


@pytest.mark.slow
def test_benchmark_cli_openvino_variant_and_precision_line(cli, openvino_exported, tmp_path):
    out = tmp_path / "bench.json"
    result = cli("benchmark", str(openvino_exported("feature-extraction", **F32)), "--variant", "openvino",
                                       "--variant", "quantized", "--sequence-length", "8", "--warmup", "0", "--runs", "1",
                                       "--seconds", "0", "--json", str(out))
    assert result.exit_code == 0, result.output
    assert "OpenVINO ran in: openvino f32" in result.stdout
    rows = json.loads(out.read_text())["rows"]
    assert [row["variant"] for row in rows] == ["openvino", "quantized"]
    assert list(rows[0]) == ["variant", "batch_size", "sequence_length", "p50_ms", "p90_ms", "p99_ms", "throughput"]


def test_predict_backend_option(cli, openvino_exported):
    folder = str(openvino_exported("text-classification", **F32))
    done = cli("predict", folder, "I love Paris.", "--backend", "openvino", "--variant", "openvino")
    assert done.exit_code == 0, done.output
    assert "with the openvino graph (openvino, f32)" in done.stderr
    assert sorted(json.loads(done.stdout.splitlines()[-1])) == ["label", "score"]
    done = cli("predict", folder, "I love Paris.", "--backend", "onnxruntime", "--variant", "openvino")
    assert done.exit_code != 0 and "Error: variant openvino runs on the openvino backend" in done.output

