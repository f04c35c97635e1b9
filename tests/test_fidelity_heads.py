"""Fidelity in terms that mean something for each head (issue 17): probabilities and top-1 agreement
for classifiers, per real token for token heads, the chosen span for QA, cosine for embeddings; the
default export of a model whose logits cosine says nothing; int8 left out instead of failing."""

from __future__ import annotations

import numpy as np
import pytest

import distilbert_onnx as dox
from distilbert_onnx.manifest import read_manifest
from distilbert_onnx.config import load_config
from distilbert_onnx.checks.fidelity import Batch, calibration_batches, fidelity, reference_outputs
from distilbert_onnx.runtime.session import OnnxModel
from distilbert_onnx.samples import sample_texts
from distilbert_onnx.tasks import get_task


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def batch(mask, scores="softmax") -> Batch:
    mask = np.asarray(mask, dtype=np.int64)
    return Batch({"input_ids": np.ones_like(mask), "attention_mask": mask}, scores)


def figures(task, want, got, mask, scores="softmax"):
    return fidelity([want], lambda feeds: got, get_task(task), [batch(mask, scores)])


def test_classifier_figures_are_probabilities_and_agreement_not_logit_cosine():
    want = {"logits": np.array([[0.01, -0.01], [5.0, -5.0], [2.0, 0.0]], dtype=np.float32)}
    got = {"logits": np.array([[-0.01, 0.01], [4.9, -5.0], [0.0, 2.0]], dtype=np.float32)}
    result = figures("text-classification", want, got, np.ones((3, 4)))
    # per text: the largest change of a class probability (two classes: the change of p(class 0))
    diffs = np.abs(sigmoid([0.02, 10.0, 2.0]) - sigmoid([-0.02, 9.9, -2.0]))
    assert result["max_prob_diff"] == pytest.approx(diffs.max(), abs=1e-6)
    assert result["mean_prob_diff"] == pytest.approx(diffs.mean(), abs=1e-6)
    assert result["top1_agreement"] == pytest.approx(1 / 3) and result["rows"] == 3
    assert "mean_cosine" not in result  # the flipped near-zero row would read as cosine -1

    multi_label = figures("text-classification", {"logits": np.array([[2.0, -2.0]])},
                          {"logits": np.array([[2.0, 0.5]])}, np.ones((1, 3)), scores="sigmoid")
    assert multi_label["max_prob_diff"] == pytest.approx(sigmoid(0.5) - sigmoid(-2.0), abs=1e-6)
    assert multi_label["top1_agreement"] == 0.0  # the second label crossed 0.5


def test_token_figures_count_real_tokens_only():
    mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0]])
    rng = np.random.default_rng(0)
    want = rng.normal(size=(2, 4, 3)).astype(np.float32)
    got = want.copy()
    got[:, :, 0] += 0.5  # a shift of one label's logit at every position ...
    got[0, 3] = got[1, 2:] = 100.0  # ... and garbage at padded positions, which must not count
    result = figures("token-classification", {"logits": want}, {"logits": got}, mask)

    def softmax(x):
        e = np.exp(x - x.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    real = mask.astype(bool)
    diffs = np.abs(softmax(want[real].astype(np.float64)) - softmax(got[real].astype(np.float64))).max(-1)
    assert result["rows"] == 5 and result["max_prob_diff"] == pytest.approx(diffs.max(), abs=1e-6)
    agree = softmax(want[real]).argmax(-1) == softmax(got[real]).argmax(-1)
    assert result["top1_agreement"] == pytest.approx(agree.mean())


def test_question_answering_figures_are_the_chosen_span_and_its_probability():
    mask = np.array([[1, 1, 1, 1, 0]])
    start = np.array([[0.0, 3.0, 1.0, 0.0, 9.0]], dtype=np.float32)  # position 4 is padding
    end = np.array([[0.0, 0.0, 3.0, 2.5, 9.0]], dtype=np.float32)
    want = {"start_logits": start, "end_logits": end}
    same_span = figures("question-answering", want, {"start_logits": start, "end_logits": end - [[0, 0, 0, 0.4, 0]]}, mask)
    assert same_span["span_agreement"] == 1.0

    def span_probability(s, e):
        ps, pe = (np.exp(v[0, :4]) / np.exp(v[0, :4]).sum() for v in (s, e))
        return ps[1] * pe[2]  # fp32's best span: tokens 1 to 2

    moved = end.copy()
    moved[0, 3] = 3.5
    other_span = figures("question-answering", want, {"start_logits": start, "end_logits": moved}, mask)
    assert other_span["span_agreement"] == 0.0 and other_span["rows"] == 1
    assert other_span["max_prob_diff"] == pytest.approx(abs(span_probability(start, end) - span_probability(start, moved)), abs=1e-6)


def test_embedding_figures_are_cosines_of_pooled_vectors():
    mask = np.array([[1, 1, 0]])
    hidden = np.array([[[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]], dtype=np.float32)
    got = np.array([[[1.0, 0.0], [0.0, 1.0], [-9.0, 3.0]]], dtype=np.float32)  # only the padded position differs
    result = figures("feature-extraction", {"last_hidden_state": hidden}, {"last_hidden_state": got}, mask)
    assert result["mean_cosine"] == pytest.approx(1.0) and result["min_cosine"] == pytest.approx(1.0)
    assert "max_prob_diff" not in result


def test_figures_over_two_ways_of_calling_are_the_worse_of_each():
    """A graph measured in padded batches and one text per call gets each figure at its worse."""
    mask = np.ones((2, 3))
    want = {"logits": np.array([[2.0, 0.0], [0.0, 2.0]], dtype=np.float32)}
    in_batches = {"logits": np.array([[2.0, 0.0], [2.0, 0.0]], dtype=np.float32)}  # flips the second
    alone = [{"logits": np.array([[1.0, 0.0]], dtype=np.float32)}, {"logits": np.array([[0.0, 2.0]], dtype=np.float32)}]
    batches = [batch(mask), Batch(batch(mask[:1]).feeds, calls="per-text"), Batch(batch(mask[1:]).feeds, calls="per-text")]
    answers = iter([in_batches, *alone])
    expected = [want, {"logits": want["logits"][:1]}, {"logits": want["logits"][1:]}]
    result = fidelity(expected, lambda feeds: next(answers), get_task("text-classification"), batches)
    batched_diff = sigmoid(2.0) - sigmoid(-2.0)
    alone_diffs = [sigmoid(2.0) - sigmoid(1.0), 0.0]
    assert result["rows"] == 2
    assert result["max_prob_diff"] == pytest.approx(batched_diff, abs=1e-6)  # the batched call's worst text
    assert result["mean_prob_diff"] == pytest.approx(batched_diff / 2, abs=1e-6)
    assert result["top1_agreement"] == pytest.approx(0.5)  # batched: one of two flipped; alone: none
    assert result["max_prob_diff"] > max(alone_diffs)


def test_dynamic_int8_is_measured_one_text_per_call_too(exported):
    """Dynamic int8 takes its activation range from each call, so a text alone is not computed as in a
    batch; the quantized graph's fidelity covers both, and the recorded figures are the worse of them."""
    folder = exported["text-classification"]
    spec, config, texts = get_task("text-classification"), load_config(folder), sample_texts()[:40]
    both = calibration_batches(folder, spec, config, texts, per_text=True)
    alone = [b for b in both if b.calls == "per-text"]
    assert len(alone) == len(texts) and all(b.feeds["input_ids"].shape[0] == 1 for b in alone)
    int8 = OnnxModel(folder / "model_quantized.onnx").run
    expected = reference_outputs(OnnxModel(folder / "model.onnx").run, both)
    worst = fidelity(expected, int8, spec, both)
    ways = [[i for i, b in enumerate(both) if b.calls == calls] for calls in ("batched", "per-text")]
    each = [fidelity([expected[i] for i in way], int8, spec, [both[i] for i in way]) for way in ways]
    assert each[0] != each[1]  # the batch changes what dynamic int8 computes
    assert worst["max_prob_diff"] == max(figures["max_prob_diff"] for figures in each)
    assert worst["top1_agreement"] == min(figures["top1_agreement"] for figures in each)


@pytest.mark.slow
def test_default_export_of_a_near_zero_logit_classifier_writes_int8(cli, uncertain_classifier, tmp_path):
    """The issue's failure: the old default target (logit cosine) could not be met by any int8 graph."""
    out = tmp_path / "out"
    result = cli("export", uncertain_classifier, out, "--no-openvino")
    assert result.exit_code == 0, result.output
    manifest = read_manifest(out).data
    record = manifest["variants"]["quantized"]
    assert record["quantization"]["target"] == {"max_prob_diff": 0.1, "min_agreement": None}
    assert record["fidelity"]["max_prob_diff"] <= 0.1 and "left_out" not in manifest
    # the case is the issue's: cosine of the logits says the int8 graph is useless
    spec = get_task("text-classification")
    batches = calibration_batches(out, spec, load_config(out), sample_texts())
    fp32 = np.concatenate([o["logits"] for o in reference_outputs(OnnxModel(out / "model.onnx").run, batches)])
    int8 = np.concatenate([o["logits"] for o in reference_outputs(OnnxModel(out / "model_quantized.onnx").run, batches)])
    cosine = (fp32 * int8).sum(1) / (np.linalg.norm(fp32, axis=1) * np.linalg.norm(int8, axis=1))
    assert cosine.min() < 0.5


@pytest.mark.slow
def test_an_int8_variant_that_misses_is_left_out_unless_required(cli, checkpoints, tmp_path):
    out = tmp_path / "out"
    result = cli("export", checkpoints["text-classification"], out, "--no-openvino", "--max-prob-diff", "1e-9")
    assert result.exit_code == 0, result.output
    left = [line for line in result.stderr.splitlines() if "left out" in line]
    assert len(left) == 1 and left[0].startswith("- quantized left out") and "max prob diff" in left[0] and "(by " in left[0]
    assert not (out / "model_quantized.onnx").exists() and (out / "model_optimized.onnx").is_file()
    manifest = read_manifest(out).data
    assert "quantized" not in manifest["variants"] and "max prob diff" in manifest["left_out"]["quantized"]
    assert "quantized  LEFT OUT:" in cli("info", out).stdout
    assert dox.load(out).variant == "optimized"

    required = cli("export", checkpoints["text-classification"], tmp_path / "required", "--no-openvino",
                   "--max-prob-diff", "1e-9", "--require-int8")
    assert required.exit_code == 1 and "Traceback" not in required.output
    errors = [line for line in required.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "misses the target (max prob diff <= 1e-09)" in errors[0]
    assert not (tmp_path / "required").exists()


def test_a_bound_of_another_head_is_refused(cli, checkpoints, tmp_path):
    result = cli("export", checkpoints["text-classification"], tmp_path / "out", "--no-openvino", "--min-cosine", "0.9")
    assert result.exit_code == 1 and not (tmp_path / "out").exists()
    assert "--min-cosine does not apply to text-classification" in result.stderr and "--max-prob-diff" in result.stderr
