"""The task table as the one home of per-head facts: records, made-up inputs, the fidelity measure,
the optimizer's expectations, and no task-name comparisons anywhere else in the package."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import distilbert_onnx
from distilbert_onnx.checks.fidelity import calibration_batches, fidelity, reference_outputs
from distilbert_onnx.checks.probes import PROBE_SHAPES, make_probes
from distilbert_onnx.config import DistilBertConfig, load_config
from distilbert_onnx.onnx_build.optimize import expected_fusions
from distilbert_onnx.runtime.session import OnnxModel
from distilbert_onnx.tasks import CHOICES, TASK_CHOICES, TASK_NAMES, TASKS, get_task

PACKAGE = Path(distilbert_onnx.__file__).parent
TEXTS = ["Maria lives in Paris.", "The battery lasts two days.", "John flew to London.", "It rained all day.",
         "The museum opens at ten.", "Rome is the capital of Italy.", "I love this phone."]


def test_records_of_every_head():
    for spec in TASKS:
        record = spec.sample_record(TEXTS, 0)
        assert list(record) == list(spec.required_fields) and spec.text_field in spec.record_fields
        with pytest.raises(ValueError, match=f"{spec.name} needs an object with {', '.join(spec.required_fields)}"):
            spec.input_from_record({"unrelated": "x"}, "line 3")
    assert get_task("text-classification").input_from_record("a bare text") == "a bare text"
    assert get_task("text-classification").input_from_record({"text": "a", "text_pair": "b", "id": 7}) == {
        "text": "a", "text_pair": "b"}
    qa = get_task("question-answering")
    assert qa.text_field == "context"
    assert qa.sample_record(TEXTS, 6) == {"question": TEXTS[6], "context": f"{TEXTS[0]} {TEXTS[1]}"}
    assert qa.model_texts(qa.sample_record(TEXTS, 0)) == [(TEXTS[0], f"{TEXTS[1]} {TEXTS[2]}")]
    choice = get_task("multiple-choice")
    assert choice.text_field == "prompt"
    record = choice.sample_record(TEXTS, 1)
    assert record == {"prompt": TEXTS[1], "choices": TEXTS[2 : 2 + CHOICES]}
    assert choice.model_texts(record) == [(TEXTS[1], text) for text in TEXTS[2 : 2 + CHOICES]]
    pairs = get_task("text-classification")
    assert pairs.model_texts({"text": "a", "text_pair": "b"}) == [("a", "b")] and pairs.model_texts({"text": "a"}) == ["a"]


@pytest.mark.parametrize("task", TASK_NAMES)
def test_made_up_inputs_have_the_heads_axes(task):
    spec = get_task(task)
    feeds = spec.example_feeds(vocab_size=50, batch_size=3, sequence_length=7, seed=1)
    shape = (3, CHOICES, 7) if task == "multiple-choice" else (3, 7)
    assert spec.has_choices == (task == "multiple-choice")
    for name in ("input_ids", "attention_mask"):
        assert feeds[name].shape == shape and feeds[name].dtype == np.int64
    assert feeds["attention_mask"].all() and 1 <= feeds["input_ids"].min() and feeds["input_ids"].max() < 50
    assert spec.input_shape(2, 5, choices=6) == ((2, 6, 5) if spec.has_choices else (2, 5))
    probes = make_probes(spec, vocab_size=50)
    assert [probe.input_ids.shape for probe in probes] == [spec.input_shape(b, s, c) for b, s, c in PROBE_SHAPES]


def test_probes_differ_from_the_traced_shape_on_every_axis():
    from distilbert_onnx.exporting.exporter import EXAMPLE_BATCH, EXAMPLE_SEQUENCE

    for batch, sequence, choices in PROBE_SHAPES:
        assert batch != EXAMPLE_BATCH and sequence != EXAMPLE_SEQUENCE and choices != CHOICES


def test_expected_fusions_follow_the_heads_gelus():
    config = DistilBertConfig(n_layers=3)
    for spec in TASKS:
        extra = 1 if spec.name == "fill-mask" else 0
        assert expected_fusions(spec, config)["BiasGelu"] == 3 + extra
        assert expected_fusions(spec, config, fp16=True)["FastGelu"] == 3 + extra


@pytest.mark.parametrize("task", TASK_NAMES)
def test_calibration_batches_and_the_fidelity_measure_of_each_head(exported, task):
    folder = exported[task]
    spec, config = get_task(task), load_config(folder)
    batches = calibration_batches(folder, spec, config, TEXTS)
    rows = [batch.feeds["input_ids"] for batch in batches]
    assert sum(len(ids) for ids in rows) == len(TEXTS)
    assert all(ids.shape == spec.input_shape(len(ids), ids.shape[-1]) for ids in rows)
    reference = OnnxModel(folder / "model.onnx").run
    expected = reference_outputs(reference, batches)
    same = fidelity(expected, reference, spec, batches)
    keys = {"probabilities": {"max_prob_diff", "mean_prob_diff", "top1_agreement"},
            "spans": {"max_prob_diff", "mean_prob_diff", "span_agreement"},
            "mean-pooled": {"mean_cosine", "min_cosine"}}[spec.compared_as]
    assert set(same) == {"rows", "max_abs_diff"} | keys and same["max_abs_diff"] == 0.0
    assert same.get("mean_cosine", 1.0) == pytest.approx(1.0) and same.get("max_prob_diff", 0.0) == 0.0
    agreement = next((key for key in keys if key.endswith("_agreement")), None)
    assert same.get(agreement, 1.0) == 1.0
    if task in ("token-classification", "fill-mask"):  # a vector per real token
        assert same["rows"] > len(TEXTS)
    else:
        assert same["rows"] == len(TEXTS)

    def negated(feeds):  # a graph gone wrong: every output negated
        return {name: -value for name, value in reference(feeds).items()}

    broken = fidelity(expected, negated, spec, batches)
    assert broken["max_abs_diff"] > 0
    if agreement:
        assert broken[agreement] < 0.5 and broken["max_prob_diff"] > 0
    else:
        assert broken["mean_cosine"] == pytest.approx(-1.0)


def literals_compared(names, allowed: set[Path], subscripts: bool = False) -> list[str]:
    """path:line of every comparison (and with `subscripts`, every subscript) outside `allowed` that
    has one of `names` as a string literal."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
            elif subscripts and isinstance(node, ast.Subscript):  # records["quantized"], VARIANTS["fp32"]
                operands = [node.slice]
            else:
                continue
            values = [item for operand in operands for item in getattr(operand, "elts", [operand])]
            if any(isinstance(value, ast.Constant) and value.value in names for value in values):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    return offenders


def test_only_the_task_table_and_the_pipelines_compare_task_names():
    """Front ends (CLI, server, bulk jobs) and graph tools ask the TaskSpec instead."""
    allowed = {PACKAGE / "tasks.py", *(PACKAGE / "runtime" / "pipelines").glob("*.py")}
    assert literals_compared(TASK_CHOICES, allowed) == []


def test_only_the_variant_table_compares_variant_names():
    """Code asks the Variant row (backend, is_int8, precision_rule) or names it by its constant."""
    from distilbert_onnx.variants import VARIANTS

    assert literals_compared(set(VARIANTS), {PACKAGE / "variants.py"}, subscripts=True) == []
