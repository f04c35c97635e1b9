"""The user's own data in the int8 builds (issue 17): calibration rows from a table, and the metric
gate (--eval-data, --max-metric-drop) with its manifest record, `info` / `validate` lines, and a gate
no graph can meet."""

from __future__ import annotations

import csv
import json
import shutil

import pytest

import distilbert_onnx as dox
from distilbert_onnx.artifacts import sha256_file
from distilbert_onnx.manifest import read_manifest
from distilbert_onnx.checks.user_data import DataFile
from distilbert_onnx.samples import sample_texts
from distilbert_onnx.tasks import get_task


def labelled_csv(path, folder, rows: int, wrong_every: int | None = None):
    """`rows` sample texts labelled with fp32's own predictions (every `wrong_every`-th with the other
    label): fp32's accuracy is known, and any changed prediction shows in the metric."""
    texts = sample_texts()[:rows]
    pipe = dox.load(folder, variant="fp32")
    predicted = [result["label"] for result in pipe(texts)]
    labels = sorted(pipe.context.config.id2label.values())
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sentence", "gold"])
        for index, (text, label) in enumerate(zip(texts, predicted)):
            if wrong_every and index % wrong_every == 0:
                label = next(other for other in labels if other != label)
            writer.writerow([text, label])
    return path


@pytest.fixture
def classifier(export_tiny, tmp_path):
    """A copy of the tiny text classifier's export (model.onnx only)."""
    folder = tmp_path / "folder"
    shutil.copytree(export_tiny("text-classification")[1], folder)
    return folder


@pytest.mark.slow
def test_a_gate_that_is_met_is_recorded_and_shown(cli, classifier, tmp_path):
    data = labelled_csv(tmp_path / "eval.csv", classifier, 40, wrong_every=4)
    result = cli("quantize", classifier, "--eval-data", data, "--text-column", "sentence", "--label-column", "gold",
                 "--max-metric-drop", "0.3")
    assert result.exit_code == 0, result.output
    gate = read_manifest(classifier).data["variants"]["quantized"]["gate"]
    assert gate == {"metric": "accuracy", "value": 75.0, "fp32_value": 75.0, "drop": 0.0, "drop_interval": [0.0, 0.0],
                    "max_drop": 0.3, "changed_vs_fp32": 0.0, "data": "eval.csv", "data_sha256": sha256_file(data),
                    "rows": 40, "meets": True}
    shown = ("metric gate: accuracy 75.00 (fp32 75.00, drop 0.00, 95% interval 0.00 to 0.00; meets max drop 0.3) "
             "on 40 rows of eval.csv")
    assert shown in result.stdout and shown in cli("info", classifier).stdout
    validated = cli("validate", classifier)
    assert validated.exit_code == 0 and f"recorded {shown}" in validated.stdout


def test_no_drop_on_the_rows_is_not_enough_when_its_interval_reaches_past_the_gate(classifier, tmp_path):
    """A graph that turns many predictions around, gaining as many rows as it loses, shows no drop on
    the rows; the paired interval of the drop reaches far past the gate, so it misses, and says so."""
    from tokenizers import Tokenizer

    from distilbert_onnx.checks.metric_gate import MetricGate, gate_shortfall
    from distilbert_onnx.runtime.session import OnnxModel

    tokenizer = Tokenizer.from_file(str(classifier / "tokenizer.json"))
    pipe = dox.load(classifier, variant="fp32")
    texts = sample_texts()[:80]
    turned = [sum(tokenizer.encode(text).ids) % 2 == 0 for text in texts]  # the rows the candidate flips
    if sum(turned) % 2:  # an even number of them: as many gained as lost
        index = turned.index(True)
        texts, turned = texts[:index] + texts[index + 1:], turned[:index] + turned[index + 1:]
    assert 10 <= sum(turned) <= len(texts) - 10
    labels = sorted(pipe.context.config.id2label.values())
    assert len(labels) == 2
    predicted = [result["label"] for result in pipe(texts)]
    flips = iter(range(len(texts)))
    gold = [next(other for other in labels if other != label) if flip and next(flips) % 2 else label
            for label, flip in zip(predicted, turned)]  # every second flipped row gains, the others lose
    path = tmp_path / "eval.jsonl"
    path.write_text("".join(json.dumps({"sentence": text, "gold": label}) + "\n" for text, label in zip(texts, gold)),
                    encoding="utf-8")

    class Flipping(OnnxModel):
        """model.onnx, with the logits of the rows whose token ids sum to an even number turned around."""

        def run(self, feeds):
            logits = super().run(feeds)["logits"].copy()
            rows = feeds["input_ids"].sum(axis=1) % 2 == 0
            logits[rows] = logits[rows][:, ::-1]
            return {"logits": logits}

    gate = MetricGate(classifier, DataFile.of(path, {"text": "sentence"}, "gold"), 0.3).judge(
        Flipping(classifier / "model.onnx"), "quantized")
    assert gate["drop"] == 0.0 and gate["changed_vs_fp32"] == pytest.approx(100 * sum(turned) / len(texts), abs=1e-3)
    low, high = gate["drop_interval"]
    assert low < 0 < 0.3 < high and gate["meets"] is False
    assert f"accuracy drop 0.00 points, up to {high:.2f} at 95% confidence > 0.3" in gate_shortfall(gate)


@pytest.mark.slow
def test_a_gate_no_graph_can_meet_writes_nothing_and_says_by_how_much(cli, uncertain_classifier, tmp_path):
    """Near-zero logits: int8 flips many predictions, so with labels = fp32's predictions no int8
    graph keeps accuracy within 0.3 points, whatever it keeps in fp32."""
    folder = dox.export(uncertain_classifier, tmp_path / "folder", optimize=False, quantize=False, openvino=False).folder
    data = labelled_csv(tmp_path / "eval.csv", folder, 60)
    gate = ["--eval-data", data, "--text-column", "sentence", "--label-column", "gold", "--max-metric-drop", "0.3"]
    failed = cli("quantize", folder, *gate)
    assert failed.exit_code == 1 and "Traceback" not in failed.output
    errors = [line for line in failed.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "a drop of the task's metric <= 0.3 points" in errors[0]
    assert "accuracy drop" in errors[0] and "at 95% confidence > 0.3 (by " in errors[0] and "against fp32's 100.00" in errors[0]
    assert not (folder / "model_quantized.onnx").exists() and "quantized" not in read_manifest(folder).data["variants"]

    out = tmp_path / "exported"
    exported = cli("export", uncertain_classifier, out, "--no-openvino", "--no-optimize", *gate)
    assert exported.exit_code == 0, exported.output
    left = [line for line in exported.stderr.splitlines() if "left out" in line]
    assert len(left) == 1 and left[0].startswith("- quantized left out") and "accuracy drop" in left[0]
    assert not (out / "model_quantized.onnx").exists() and "accuracy drop" in read_manifest(out).data["left_out"]["quantized"]


def test_gate_options_come_together(cli, classifier, tmp_path):
    data = labelled_csv(tmp_path / "eval.csv", classifier, 8)
    for args in (["--eval-data", data], ["--max-metric-drop", "0.5"]):
        result = cli("quantize", classifier, *args)
        assert result.exit_code == 1 and "needs both --eval-data FILE and --max-metric-drop POINTS" in result.stderr
    missing = cli("quantize", classifier, "--eval-data", data, "--max-metric-drop", "0.5", "--text-column", "sentence")
    assert missing.exit_code == 1 and "has no column 'label'" in missing.stderr and "--label-column" in missing.stderr


def test_calibration_rows_from_the_users_data(classifier, tmp_path):
    path = tmp_path / "calibration.jsonl"
    rows = [{"id": index, "review": text} for index, text in enumerate(sample_texts()[:30])]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    record = dox.quantize(classifier, calibration_data=path, columns={"text": "review"}, calibration_rows=10, target=False)
    assert record["quantization"]["calibration"] == {
        "texts": 10, "source": "calibration.jsonl", "file": "calibration.jsonl", "sha256": sha256_file(path),
        "rows_in_file": 30, "rows_used": 10, "sampled": "seed 0"}
    assert record["fidelity"]["rows"] == 10
    spec = get_task("text-classification")
    sample, _ = DataFile.of(path, {"text": "review"}, rows=10).records(spec)
    again, _ = DataFile.of(path, {"text": "review"}, rows=10).records(spec)
    assert sample == again and len({record["text"] for record in sample}) == 10  # reproducible, no repeats
    assert {record["text"] for record in sample} < {row["review"] for row in rows}
    assert [record["text"] for record in sample] != [row["review"] for row in rows[:10]]  # sampled, not the head
    whole, details = DataFile.of(path, {"text": "review"}, rows=300).records(spec)
    assert len(whole) == 30 and details["sampled"] is None


def test_calibration_data_errors(cli, classifier, tmp_path):
    path = tmp_path / "calibration.csv"
    path.write_text("review\nA fine day.\n", encoding="utf-8")
    both = cli("quantize", classifier, "--calibration-data", path, "--calibration-texts", path)
    assert both.exit_code == 1 and "give --calibration-texts or --calibration-data, not both" in both.stderr
    missing = cli("quantize", classifier, "--calibration-data", path)
    errors = [line for line in missing.stderr.splitlines() if line.startswith("Error:")]
    assert missing.exit_code == 1 and len(errors) == 1 and "has no column 'text'" in errors[0]


def test_calibration_rows_of_words_for_token_classification(export_tiny, tmp_path):
    folder = tmp_path / "folder"
    shutil.copytree(export_tiny("token-classification")[1], folder)
    path = tmp_path / "words.jsonl"
    sentences = [text.split() for text in sample_texts()[:6]]
    path.write_text("".join(json.dumps({"tokens": words, "tags": ["O"] * len(words)}) + "\n" for words in sentences),
                    encoding="utf-8")
    records, _ = DataFile.of(path, {"text": "tokens"}).records(get_task("token-classification"))
    assert [record["text"] for record in records] == [" ".join(words) for words in sentences]
    record = dox.quantize(folder, calibration_data=path, columns={"text": "tokens"}, target=False)
    assert record["quantization"]["calibration"]["rows_used"] == 6 and record["fidelity"]["rows"] > 6  # real tokens
