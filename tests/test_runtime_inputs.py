"""The runtime's edges: bad inputs and options, and what reaches onnxruntime (never token_type_ids).
Batching and streaming: test_runtime_batching.py; devices, variants and folders: test_runtime_folders.py."""

from __future__ import annotations

import numpy as np
import pytest
from runtime_helpers import LONG_TEXT, MEDIUM_TEXT, TEXTS, call, copy_folder, sample

import distilbert_onnx as dox
from distilbert_onnx.manifest import MANIFEST_NAME
from distilbert_onnx.errors import ArtifactError, OptionError

TEXT_TASKS = ["text-classification", "token-classification", "fill-mask", "feature-extraction"]


# --- bad inputs (issue point 7) ---------------------------------------------------------------


@pytest.mark.parametrize("task", TEXT_TASKS)
@pytest.mark.parametrize(
    "value, error, message",
    [
        (None, TypeError, r"the input is None: expected a string"),
        (123, TypeError, r"the input is a int: expected a string"),
        (4.5, TypeError, r"the input is a float"),
        (b"I love Paris", TypeError, r"the input is bytes: decode it"),
        (bytearray(b"x"), TypeError, r"bytes"),
        (["Paris is [MASK].", None], TypeError, r"item 1 of the input list is None"),
        ([None], TypeError, r"item 0 of the input list is None"),
        (["Paris is [MASK].", b"x"], TypeError, r"item 1 of the input list is bytes"),
        (["Paris is [MASK].", ["nested"]], TypeError, r"item 1 of the input list is a list"),
    ],
)
def test_text_tasks_refuse_non_text(pipes, task, value, error, message):
    with pytest.raises(error, match=message):
        pipes[task](value)


@pytest.mark.parametrize("task", ["text-classification", "token-classification", "fill-mask", "feature-extraction",
                                  "question-answering", "multiple-choice"])
def test_empty_list_gives_empty_list(pipes, task, recorded):
    feeds = recorded(pipes[task])
    assert pipes[task]([]) == []
    assert list(pipes[task](iter([]))) == []
    assert feeds == []


def test_no_input_at_all(pipes):
    for task in TEXT_TASKS:
        with pytest.raises(TypeError, match="None"):
            pipes[task]()


def test_empty_and_blank_texts_give_results(pipes):
    for text in ("", "   ", "\n\t"):
        [result] = pipes["text-classification"](text)
        assert set(result) == {"label", "score"}
        assert pipes["token-classification"](text, ignore_labels=[]) == []
        vectors = np.array(pipes["feature-extraction"](text))
        assert vectors.shape == (1, 2, 32)  # [CLS] [SEP]
    choices = pipes["multiple-choice"]("", choices=["", "a"])
    assert [entry["choice"] for entry in choices] == ["", "a"]


def test_empty_text_pair_part(pipes):
    pipe = pipes["text-classification"]
    assert pipe({"text": "Paris", "text_pair": None}) == pipe("Paris", top_k=1)[0]
    assert set(pipe({"text": "", "text_pair": ""})) == {"label", "score"}
    with pytest.raises(ValueError, match=r"text_pair"):
        pipe({"txt": "Paris"})
    with pytest.raises(TypeError, match=r"\['text_pair'\] is a int"):
        pipe({"text": "Paris", "text_pair": 3})


def test_dicts_are_not_texts(pipes):
    for task in ("token-classification", "fill-mask", "feature-extraction"):
        with pytest.raises(TypeError, match="is a dict: expected a string"):
            pipes[task]({"text": "Paris is [MASK]."})


def test_fill_mask_without_mask(pipes):
    pipe = pipes["fill-mask"]
    for text in ("", "Paris is the capital of France.", "a [mask] in lower case is not a mask token"):
        with pytest.raises(ValueError, match=r"no \[MASK\] token in .*fill-mask needs at least one"):
            pipe(text)
    with pytest.raises(ValueError, match=r"item|no \[MASK\]"):
        pipe(["Paris is the [MASK].", "no mask here"])


def test_fill_mask_beyond_the_model_length(pipes):
    pipe = pipes["fill-mask"]
    with pytest.raises(ValueError, match=r"beyond the model's maximum length \(512 tokens\)"):
        pipe(LONG_TEXT + " [MASK]")
    [*proposals] = pipe("[MASK] " + LONG_TEXT)  # truncated after the mask: fine
    assert len(proposals) == 5 and proposals[0]["sequence"]


@pytest.mark.parametrize(
    "arguments, error, message",
    [
        ({"question": "Where?"}, ValueError, r"has no context: question-answering needs both"),
        ({"context": "Maria lives in Paris."}, ValueError, r"has no question"),
        ({"question": "Where?", "context": None}, ValueError, r"has no context"),
        ({"question": "", "context": "Paris"}, ValueError, r"empty question"),
        ({"question": "Where?", "context": "  "}, ValueError, r"empty context"),
        ({"question": b"Where?", "context": "Paris"}, TypeError, r"question is bytes"),
        ({"question": "Where?", "context": 3}, TypeError, r"context is a int"),
        ({"question": ["a", "b"], "context": ["c"]}, ValueError, r"2 questions and 1 contexts"),
        ({"question": "Where?", "context": ["Paris", None]}, ValueError, r"item 1 has no context"),
        ({"inputs": "Where is Paris?"}, TypeError, r"question-answering takes question=\.\.\., context=\.\.\."),
        ({"inputs": None}, TypeError, r"question-answering takes"),
        ({"inputs": {"question": "Where?"}}, ValueError, r"has no context"),
        ({"inputs": [{"question": "Where?", "context": "Paris"}, None]}, TypeError, r"item 1 of the input list is a NoneType"),
        ({"inputs": [{"question": "Where?", "context": "Paris"}, "Paris"]}, TypeError, r"item 1 of the input list is a str"),
    ],
)
def test_question_answering_bad_inputs(pipes, arguments, error, message):
    with pytest.raises(error, match=message):
        call(pipes["question-answering"], arguments)


def test_question_answering_question_too_long_for_the_window(pipes):
    pipe = pipes["question-answering"]
    question = " ".join(["where does maria live"] * 15)
    message = r"a question of \d+ tokens leaves no room for a 32-token doc_stride within max_seq_len 64"
    with pytest.raises(ValueError, match=message):
        pipe(question=question, context=MEDIUM_TEXT, max_seq_len=64, max_question_len=100)
    # by default the question is cut to max_question_len (64) tokens and answers come back
    answer = pipe(question=" ".join(["where does maria live"] * 40), context=MEDIUM_TEXT)
    assert MEDIUM_TEXT[answer["start"] : answer["end"]] == answer["answer"]


@pytest.mark.parametrize(
    "arguments, error, message",
    [
        ({"inputs": "Maria lives in"}, TypeError, r"multiple-choice takes pipe\(prompt, choices=\[\.\.\.\]\)"),
        ({"inputs": "Maria lives in", "choices": []}, ValueError, r"choices must be a non-empty list of strings"),
        ({"inputs": "Maria lives in", "choices": "Paris"}, ValueError, r"choices must be a non-empty list"),
        ({"inputs": "Maria lives in", "choices": ["Paris", None]}, TypeError, r"choice 1 is None"),
        ({"inputs": None, "choices": ["Paris"]}, TypeError, r"prompt is None"),
        ({"inputs": b"Maria", "choices": ["Paris"]}, TypeError, r"prompt is bytes"),
        ({"inputs": ["Maria lives in"], "choices": ["Paris"]}, TypeError, r"choices=\.\.\. goes with a single prompt"),
        ({"inputs": [{"prompt": "Maria lives in"}]}, TypeError, r"item 0 of the input list must be a"),
        ({"inputs": [{"prompt": "Maria", "choices": ["a"]}, None]}, TypeError, r"item 1 of the input list"),
    ],
)
def test_multiple_choice_bad_inputs(pipes, arguments, error, message):
    with pytest.raises(error, match=message):
        call(pipes["multiple-choice"], arguments)


@pytest.mark.parametrize(
    "task, options, error, message",
    [
        ("text-classification", {"top_k": 0}, ValueError, r"top_k must be a positive integer or None, got 0"),
        ("text-classification", {"top_k": "2"}, ValueError, r"top_k must be"),
        ("text-classification", {"function_to_apply": "relu"}, ValueError,
         r"function_to_apply must be one of softmax, sigmoid, none"),
        ("text-classification", {"pooling": "mean"}, TypeError,
         r"text-classification does not take pooling \(its options: function_to_apply, top_k\)"),
        ("token-classification", {"aggregation_strategy": "longest"}, ValueError,
         r"aggregation_strategy must be one of none, simple, first, average, max"),
        ("token-classification", {"stride": 510}, ValueError, r"stride must be an integer from 0 to 509"),
        ("token-classification", {"stride": -1}, ValueError, r"stride must be"),
        ("token-classification", {"ignore_labels": "O"}, ValueError, r"ignore_labels must be a list"),
        ("token-classification", {"top_k": 3}, TypeError, r"does not take top_k"),
        ("fill-mask", {"top_k": 0}, ValueError, r"top_k must be a positive integer"),
        ("fill-mask", {"targets": []}, ValueError, r"none of the targets is in the vocabulary"),
        ("fill-mask", {"targets": [None]}, TypeError, r"a target is None"),
        ("fill-mask", {"targets": 5}, TypeError, r"targets must be a word or a list of words, got a int"),
        ("feature-extraction", {"normalize": "yes"}, TypeError, r"normalize must be True or False"),
        ("question-answering", {"handle_impossible_answer": 1}, TypeError, r"handle_impossible_answer must be True or False"),
        ("feature-extraction", {"pooling": "max"}, ValueError, r"pooling must be None, 'mean' or 'cls'"),
        ("question-answering", {"top_k": 0}, ValueError, r"top_k must be a positive integer"),
        ("question-answering", {"max_answer_len": 0}, ValueError, r"max_answer_len must be a positive integer"),
        ("question-answering", {"max_question_len": -3}, ValueError, r"max_question_len must be a positive integer"),
        ("question-answering", {"max_seq_len": 100_000}, ValueError, r"max_seq_len must be from 1 to the model's 512"),
        ("question-answering", {"doc_stride": 384}, ValueError, r"doc_stride must be from 0 to max_seq_len - 1 \(383\)"),
        ("question-answering", {"doc_stride": -1}, ValueError, r"doc_stride must be"),
        ("multiple-choice", {"top_k": 1}, TypeError, r"multiple-choice does not take top_k"),
    ],
)
def test_bad_options(pipes, task, options, error, message):
    with pytest.raises(error, match=message):
        call(pipes[task], sample(task), **options)


@pytest.mark.parametrize("batch_size", [0, -1, 1.5, "8", True])
def test_bad_batch_size(pipes, batch_size):
    with pytest.raises(OptionError, match="batch_size must be a positive integer"):
        pipes["text-classification"](TEXTS, batch_size=batch_size)


def test_text_far_longer_than_the_model(pipes):
    """Truncated to the model's 512 positions, or windowed for the tasks that read every token."""
    [result] = pipes["text-classification"](LONG_TEXT)
    assert set(result) == {"label", "score"}
    assert np.array(pipes["feature-extraction"](LONG_TEXT)).shape == (1, 512, 32)
    assert len(pipes["feature-extraction"](LONG_TEXT, pooling="mean")) == 32
    scores = pipes["multiple-choice"](LONG_TEXT, choices=[LONG_TEXT, "no"])
    assert [entry["choice"] for entry in scores] == [LONG_TEXT, "no"]
    # token-classification: entities all along the text, well past the first window
    tokens = pipes["token-classification"](LONG_TEXT, ignore_labels=[])
    encoding = pipes["token-classification"].context.tokenizer.encode([LONG_TEXT], max_length=10**6)[0]
    assert len(tokens) == len(encoding.ids) - 2 > 3000
    assert tokens[-1]["end"] == len(LONG_TEXT.rstrip())
    # question-answering: answers from every window are spans of the context
    answers = pipes["question-answering"](question="What time does the museum open?", context=LONG_TEXT, top_k=20)
    assert max(answer["start"] for answer in answers) > 0
    for answer in answers:
        assert LONG_TEXT[answer["start"] : answer["end"]] == answer["answer"]


def test_bad_inputs_never_reach_onnxruntime(pipes, recorded):
    """A bad item anywhere in a list fails before any batch runs."""
    for task in TEXT_TASKS:
        feeds = recorded(pipes[task])
        with pytest.raises(TypeError):
            pipes[task](["Paris is the [MASK]."] * 40 + [None])
        assert feeds == []


def test_function_to_apply_ignores_case_like_transformers(pipes):
    """Against the sigmoid of the raw logits, not against another spelling: an option dropped on the
    way would give both spellings the same default scores."""
    pipe = pipes["text-classification"]
    logits = {entry["label"]: entry["score"] for entry in pipe("nice", function_to_apply="none", top_k=None)}
    sigmoid = {label: 1.0 / (1.0 + np.exp(-value)) for label, value in logits.items()}
    for spelling in ("SIGMOID", "Sigmoid", "sigmoid"):
        scores = {entry["label"]: entry["score"] for entry in pipe("nice", function_to_apply=spelling, top_k=None)}
        assert scores == pytest.approx(sigmoid, abs=1e-6), spelling



# --- what onnxruntime is fed --------------------------------------------------------------------


@pytest.mark.parametrize("task", ["text-classification", "token-classification", "fill-mask", "feature-extraction",
                                  "question-answering", "multiple-choice"])
def test_only_input_ids_and_attention_mask_are_fed(pipes, recorded, task):
    pipe = pipes[task]
    feeds = recorded(pipe)
    call(pipe, sample(task))
    assert feeds
    for feed in feeds:
        assert sorted(feed) == ["attention_mask", "input_ids"]
        assert feed["input_ids"].dtype == feed["attention_mask"].dtype == np.int64
        assert feed["input_ids"].ndim == (3 if task == "multiple-choice" else 2)


def test_a_graph_that_wants_token_type_ids_is_refused(exported, tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    folder = copy_folder(exported["text-classification"], tmp_path)
    inputs = [helper.make_tensor_value_info(name, TensorProto.INT64, ["batch_size", "sequence_length"])
              for name in ("input_ids", "attention_mask", "token_type_ids")]
    output = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch_size", 2])
    zero = helper.make_tensor("value", TensorProto.FLOAT, [1], [0.0])
    node = helper.make_node("ConstantOfShape", ["shape"], ["logits"], value=zero)
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [1, 2])
    graph = helper.make_graph([node], "g", inputs, [output], initializer=[shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, folder / "model.onnx")
    (folder / MANIFEST_NAME).unlink()  # an Optimum folder: with a manifest the changed sha256 is refused first
    with pytest.raises(ArtifactError, match=r"takes inputs .*token_type_ids.*input_ids and attention_mask only"):
        dox.load(folder, variant="fp32")
