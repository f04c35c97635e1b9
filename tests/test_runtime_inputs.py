"""The runtime's edges: bad inputs and options, batching and streaming, threads, damaged folders,
devices and variants, Optimum folders, and what reaches onnxruntime (never token_type_ids)."""

from __future__ import annotations

import itertools
import json
import logging
import os
import shutil
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnxruntime as ort
import pytest
from devices import CUDA, needs_cuda, without_cuda
from runtime_helpers import LONG_TEXT, MEDIUM_TEXT, TEXTS, assert_same
from tokenizers import Tokenizer

import distilbert_onnx as dox
from distilbert_onnx.artifacts import MANIFEST_NAME, choose_variant
from distilbert_onnx.errors import ArtifactError, ConfigError, DeviceError, OptionError
from distilbert_onnx.runtime.batching import chunks, map_batches, pad, plan_batches
from distilbert_onnx.runtime.pipelines.base import BATCHES_PER_CHUNK
from distilbert_onnx.runtime.session import default_threads

TEXT_TASKS = ["text-classification", "token-classification", "fill-mask", "feature-extraction"]


@pytest.fixture(scope="module")
def pipes(exported):
    """pipes[task] -> our fp32 pipeline on the shared exported folder of `task`."""

    class Pipes(dict):
        def __missing__(self, task):
            self[task] = dox.load(exported[task], variant="fp32")
            return self[task]

    return Pipes()


def copy_folder(source, tmp_path, name="copy"):
    return shutil.copytree(source, tmp_path / name)


class RecordingSession:
    """Stands in for an onnxruntime session and keeps a copy of every feed it is given."""

    def __init__(self, session):
        self.session = session
        self.feeds: list[dict[str, np.ndarray]] = []

    def run(self, output_names, feeds, *args):
        self.feeds.append({name: np.array(value) for name, value in feeds.items()})
        return self.session.run(output_names, feeds, *args)


@pytest.fixture
def recorded(monkeypatch):
    """recorded(pipe) -> the list of feeds the pipeline's model is given from now on."""

    def record(pipe):
        recorder = RecordingSession(pipe.model.session)
        monkeypatch.setattr(pipe.model, "session", recorder)
        return recorder.feeds

    return record


def sample(task: str, index: int = 0):
    """A valid single input of `task`, as keyword arguments."""
    text = TEXTS[index % len(TEXTS)]
    if task == "fill-mask":
        return {"inputs": f"{text} It was [MASK]."}
    if task == "question-answering":
        return {"question": "Who lives in Paris?", "context": text}
    if task == "multiple-choice":
        return {"inputs": text, "choices": ["yes", "no", text]}
    return {"inputs": text}


def call(pipe, arguments: dict, **options):
    arguments = dict(arguments)
    inputs = arguments.pop("inputs", None)
    return pipe(inputs, **arguments, **options) if inputs is not None else pipe(**arguments, **options)


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


# --- batching, order and padding (issue point 5) -----------------------------------------------


def test_plan_batches_sorts_caps_and_keeps_every_index():
    lengths = [5, 30, 7, 30, 2, 12, 12, 9, 1, 100]
    batches = plan_batches(lengths, batch_size=3, max_tokens=60)
    assert sorted(index for batch in batches for index in batch) == list(range(len(lengths)))
    flat = [lengths[index] for batch in batches for index in batch]
    assert flat == sorted(lengths, reverse=True)  # longest first, similar lengths together
    for batch in batches:
        assert len(batch) <= 3
        assert len(batch) == 1 or lengths[batch[0]] * len(batch) <= 60  # padded tokens under the cap
    assert batches[0] == [9]  # a row longer than the cap goes alone
    assert plan_batches([], 4) == []
    assert plan_batches([3, 3, 3], batch_size=1) == [[0], [1], [2]]


def test_map_batches_restores_order():
    units = ["ccc", "a", "bbbbb", "dd", "", "eeee"]
    seen = []

    def run(batch):
        seen.append(batch)
        return [unit.upper() for unit in batch]

    assert map_batches(units, [len(unit) for unit in units], run, batch_size=2) == [unit.upper() for unit in units]
    assert seen == [["bbbbb", "eeee"], ["ccc", "dd"], ["a", ""]]


def test_pad_to_the_longest_row():
    input_ids, attention_mask = pad([[5, 6, 7], [8], [9, 10]], pad_id=0)
    assert input_ids.dtype == attention_mask.dtype == np.int64
    assert input_ids.tolist() == [[5, 6, 7], [8, 0, 0], [9, 10, 0]]
    assert attention_mask.tolist() == [[1, 1, 1], [1, 0, 0], [1, 1, 0]]


def test_chunks_are_lazy():
    pulled = []

    def numbers():
        for number in itertools.count():
            pulled.append(number)
            yield number

    stream = chunks(numbers(), 4)
    assert pulled == []
    assert next(stream) == [0, 1, 2, 3]
    assert len(pulled) == 4
    assert list(chunks([1, 2, 3], 2)) == [[1, 2], [3]]


def varied_texts(count: int = 23) -> list[str]:
    """Texts of many lengths in a shuffled order."""
    words = MEDIUM_TEXT.split()
    lengths = np.random.default_rng(0).permutation(count) + 1
    return [" ".join(words[: 3 * int(length)]) for length in lengths]


@pytest.mark.parametrize("batch_size", [1, 4, 64])
def test_batches_are_padded_to_their_longest_row_and_results_keep_the_input_order(pipes, recorded, batch_size):
    pipe = pipes["text-classification"]
    texts = varied_texts()
    one_by_one = [pipe(text, top_k=None) for text in texts]
    feeds = recorded(pipe)
    batched = pipe(texts, top_k=None, batch_size=batch_size)
    assert_same(batched, one_by_one, atol=1e-5)
    assert len(feeds) == -(-len(texts) // batch_size)
    lengths = [len(pipe.context.tokenizer.encode([text])[0].ids) for text in texts]
    widths = []
    for feed in feeds:
        rows = feed["attention_mask"].sum(axis=1)
        assert feed["input_ids"].shape == feed["attention_mask"].shape == (len(rows), rows.max())  # no extra padding
        assert list(rows) == sorted(rows, reverse=True)  # sorted by length within the batch
        assert (feed["input_ids"][feed["attention_mask"] == 0] == pipe.context.tokenizer.pad_token_id).all()
        widths.append(int(rows.max()))
    for chunk in chunks(texts, batch_size * BATCHES_PER_CHUNK):  # each chunk read ahead is sorted, longest first
        count = -(-len(chunk) // batch_size)
        assert widths[:count] == sorted(widths[:count], reverse=True)
        widths = widths[count:]
    assert widths == []
    assert sorted(int(row) for feed in feeds for row in feed["attention_mask"].sum(axis=1)) == sorted(lengths)


def test_padded_token_cap(exported, recorded):
    pipe = dox.load(exported["text-classification"], variant="fp32", max_tokens=100)
    texts = varied_texts()
    feeds = recorded(pipe)
    results = pipe(texts, batch_size=16)
    assert len(results) == len(texts)
    for feed in feeds:
        assert feed["input_ids"].shape[0] == 1 or feed["input_ids"].size <= 100


@pytest.mark.parametrize("task", ["token-classification", "question-answering", "fill-mask", "multiple-choice",
                                  "feature-extraction"])
def test_every_task_keeps_the_input_order(pipes, task):
    pipe = pipes[task]
    items = [sample(task, index) for index in range(7)]
    singles = [call(pipe, item) for item in items]
    if task == "question-answering":
        batched = pipe(question=[item["question"] for item in items], context=[item["context"] for item in items],
                       batch_size=3)
    elif task == "multiple-choice":
        batched = pipe([{"prompt": item["inputs"], "choices": item["choices"]} for item in items], batch_size=3)
    else:
        batched = pipe([item["inputs"] for item in items], batch_size=3)
    assert_same(batched, singles, atol=1e-5)


def test_windows_of_long_texts_share_batches_with_short_ones(pipes):
    pipe = pipes["token-classification"]
    texts = [TEXTS[0], LONG_TEXT, TEXTS[4], MEDIUM_TEXT]
    singles = [pipe(text, aggregation_strategy="simple") for text in texts]
    assert_same(pipe(texts, aggregation_strategy="simple", batch_size=3), singles, atol=1e-5)


# --- streaming: an iterator in, an iterator out ------------------------------------------------


def test_an_iterator_is_consumed_lazily(pipes):
    pipe = pipes["text-classification"]
    pulled = []

    def texts():
        for number in itertools.count():
            pulled.append(number)
            yield f"{TEXTS[number % len(TEXTS)]} {number}"

    results = pipe(texts(), batch_size=2, top_k=None)
    assert iter(results) is results and not isinstance(results, list)
    assert pulled == []  # nothing read before the first result is asked for
    first = list(itertools.islice(results, 5))
    assert 5 <= len(pulled) <= 2 * BATCHES_PER_CHUNK
    assert_same(first, [pipe(f"{TEXTS[n % len(TEXTS)]} {n}", top_k=None) for n in range(5)], atol=1e-5)


def test_a_large_stream_comes_back_in_order(pipes):
    """Compared with each text run alone: a list goes through the same chunking and batching as a
    stream, so it would share any ordering bug."""
    pipe = pipes["text-classification"]
    distinct = [f"{text} {number}" for number, text in enumerate(varied_texts(40))]
    alone = [pipe(text, top_k=None) for text in distinct]
    texts = distinct * 25  # 1,000 texts
    streamed = list(pipe(iter(texts), batch_size=16, top_k=None))
    assert len(streamed) == 1000
    assert_same(streamed, alone * 25, atol=1e-5)


@pytest.mark.parametrize("task", ["question-answering", "multiple-choice", "fill-mask", "token-classification"])
def test_streams_of_every_task(pipes, task):
    pipe = pipes[task]
    items = [sample(task, index) for index in range(6)]
    if task == "question-answering":
        stream = ({"question": item["question"], "context": item["context"]} for item in items)
    elif task == "multiple-choice":
        stream = ({"prompt": item["inputs"], "choices": item["choices"]} for item in items)
    else:
        stream = (item["inputs"] for item in items)
    assert_same(list(pipe(stream, batch_size=2)), [call(pipe, item) for item in items], atol=1e-5)


def test_a_bad_item_in_a_stream_is_reported(pipes):
    results = pipes["text-classification"](iter(["fine", None]))
    with pytest.raises(TypeError, match="None: expected a string"):
        list(results)


@pytest.mark.parametrize("element", [["a", "b"], [], ("a", "b")])
def test_a_list_inside_a_stream_is_refused(pipes, element):
    """Each element of an iterator is one input: a list there is not silently cut to its first item."""
    for task in ("text-classification", "token-classification", "question-answering"):
        with pytest.raises(TypeError, match=f"an element of the input iterator is a {type(element).__name__}"):
            list(pipes[task](iter([element])))


# --- threads -----------------------------------------------------------------------------------


def test_threads_share_one_pipeline(pipes, exported):
    jobs = []
    for index in range(24):
        task = ["text-classification", "token-classification", "question-answering", "fill-mask"][index % 4]
        options = {
            "text-classification": {"top_k": None},
            "token-classification": {"aggregation_strategy": ["simple", "first", "max"][index % 3], "stride": 16 + index},
            "question-answering": {"top_k": 1 + index % 3},
            "fill-mask": {"top_k": 2 + index % 3},
        }[task]
        jobs.append((task, sample(task, index), options))
    expected = [call(pipes[task], item, **options) for task, item, options in jobs]
    shared = {task: dox.load(exported[task], variant="fp32") for task in {task for task, _, _ in jobs}}  # cold caches
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda job: call(shared[job[0]], job[1], **job[2]), jobs * 3))
    assert_same(results, expected * 3, atol=1e-5)


# --- sessions: devices, variants, threads (issue point 2) -------------------------------------


@without_cuda
def test_cuda_unavailable_is_an_error_listing_the_providers(exported):
    with pytest.raises(DeviceError) as raised:
        dox.load(exported["text-classification"], device="cuda")
    message = str(raised.value)
    assert "CUDA was asked for" in message
    for provider in ort.get_available_providers():
        assert provider in message
    assert isinstance(raised.value, RuntimeError)


@without_cuda
def test_auto_device_says_what_it_picked(exported, caplog):
    with caplog.at_level(logging.INFO, logger="distilbert_onnx"):
        pipe = dox.load(exported["text-classification"], device="auto")
    assert pipe.device == "cpu"
    assert "device=auto picked cpu" in caplog.text
    assert pipe.model.session.get_providers() == ["CPUExecutionProvider"]


def test_unknown_device(exported):
    for device in ("gpu", "CUDA", None):
        with pytest.raises(DeviceError, match="unknown device"):
            dox.load(exported["text-classification"], device=device)


def test_int8_on_cuda_is_refused(exported, monkeypatch):
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, "CPUExecutionProvider"])
    with pytest.raises(DeviceError, match=r"int8 \(quantized\) graph cannot run on CUDA"):
        dox.load(exported["text-classification"], device="cuda", variant="quantized")


def test_function_to_apply_ignores_case_like_transformers(pipes):
    """Against the sigmoid of the raw logits, not against another spelling: an option dropped on the
    way would give both spellings the same default scores."""
    pipe = pipes["text-classification"]
    logits = {entry["label"]: entry["score"] for entry in pipe("nice", function_to_apply="none", top_k=None)}
    sigmoid = {label: 1.0 / (1.0 + np.exp(-value)) for label, value in logits.items()}
    for spelling in ("SIGMOID", "Sigmoid", "sigmoid"):
        scores = {entry["label"]: entry["score"] for entry in pipe("nice", function_to_apply=spelling, top_k=None)}
        assert scores == pytest.approx(sigmoid, abs=1e-6), spelling


@pytest.mark.parametrize("max_tokens", [0, "512", None])
def test_bad_token_cap(exported, max_tokens):
    with pytest.raises(OptionError, match="max_tokens must be a positive integer"):
        dox.load(exported["text-classification"], max_tokens=max_tokens)


@without_cuda
def test_auto_uses_the_cpu_when_a_listed_cuda_provider_cannot_start(exported, monkeypatch, caplog):
    """onnxruntime-gpu lists CUDA even without a usable GPU: auto then means the CPU, and says so."""
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, "CPUExecutionProvider"])
    with warnings.catch_warnings(), caplog.at_level(logging.INFO, logger="distilbert_onnx"):
        warnings.simplefilter("ignore")
        pipe = dox.load(exported["text-classification"], device="auto")
    assert pipe.device == "cpu" and pipe.variant == "quantized"
    assert "did not start, using the CPU" in caplog.text


@without_cuda
def test_cuda_that_falls_back_to_cpu_is_an_error(exported, monkeypatch):
    """onnxruntime quietly runs on the CPU when the CUDA provider cannot start: we refuse."""
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, "CPUExecutionProvider"])
    with warnings.catch_warnings(), pytest.raises(DeviceError, match="could not start the CUDA provider"):
        warnings.simplefilter("ignore")  # onnxruntime's own warning about the missing provider
        dox.load(exported["text-classification"], device="cuda")


@needs_cuda
def test_cuda_runs_with_io_binding(exported, monkeypatch):
    pipe = dox.load(exported["question-answering"], device="cuda", variant="fp32")
    assert pipe.device == "cuda" and pipe.model.session.get_providers()[0] == CUDA
    bound = []
    original = pipe.model._run_bound
    monkeypatch.setattr(pipe.model, "_run_bound", lambda feeds: bound.append(1) or original(feeds))
    cpu = dox.load(exported["question-answering"], device="cpu", variant="fp32")
    arguments = {"question": "Who lives in Paris?", "context": LONG_TEXT, "top_k": 3}
    assert_same(pipe(**arguments), cpu(**arguments), atol=1e-3)
    assert bound


def test_variant_choice_as_in_the_design(exported, export_tiny, tmp_path):
    full = exported["text-classification"]
    assert choose_variant(full, "cpu").name == "quantized"
    assert choose_variant(full, "cuda").name == "optimized"  # no fp16 graph in this folder
    assert dox.load(full).variant == "quantized"
    _, plain = export_tiny("text-classification", seed=21)
    assert choose_variant(plain, "cpu").name == "fp32" and choose_variant(plain, "cuda").name == "fp32"
    assert dox.load(plain).variant == "fp32"
    fused = copy_folder(full, tmp_path)
    (fused / "model_quantized.onnx").unlink()
    assert dox.load(fused).variant == "optimized"
    for variant in ("fp32", "optimized", "quantized"):
        pipe = dox.load(full, variant=variant)
        assert pipe.variant == variant and pipe.model.path.name == choose_variant(full, "cpu", variant).file


def test_missing_and_unknown_variants(exported, export_tiny):
    _, plain = export_tiny("text-classification", seed=21)
    message = r"has no quantized variant \(model_quantized.onnx\); make it with: distilbert-onnx quantize"
    with pytest.raises(ArtifactError, match=message):
        dox.load(plain, variant="quantized")
    with pytest.raises(DeviceError, match=r"fp16 graph is built for cuda, not cpu"):
        dox.load(exported["text-classification"], variant="fp16")
    with pytest.raises(ArtifactError, match=r"unknown variant 'int8'"):
        dox.load(plain, variant="int8")


def test_cpu_threads_default_to_the_cores_and_can_be_set(exported):
    folder = exported["text-classification"]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert default_threads() == cores
    assert dox.load(folder).model.session.get_session_options().intra_op_num_threads == default_threads()
    assert dox.load(folder, threads=1).model.session.get_session_options().intra_op_num_threads == 1
    for threads in (0, -2, 1.5, "2", True):
        with pytest.raises(OptionError, match="threads must be a positive integer"):
            dox.load(folder, threads=threads)


def test_quantized_variant_gives_results_of_the_same_form(exported):
    """int8 scores differ from fp32 by design; the form of the results does not."""
    fp32 = dox.load(exported["text-classification"], variant="fp32")
    int8 = dox.load(exported["text-classification"], variant="quantized")
    for ours, theirs in zip(int8(TEXTS, top_k=None), fp32(TEXTS, top_k=None)):
        assert sorted(entry["label"] for entry in ours) == sorted(entry["label"] for entry in theirs)
        assert sum(entry["score"] for entry in ours) == pytest.approx(1.0, abs=1e-5)


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
    with pytest.raises(ArtifactError, match=r"takes inputs .*token_type_ids.*input_ids and attention_mask only"):
        dox.load(folder, variant="fp32")


# --- the folder: tokenizer settings, Optimum layout, damage (issue points 2, 3, 7) -------------


def test_padding_and_truncation_baked_into_tokenizer_json_are_ignored(pipes, exported, tmp_path):
    for task in ("text-classification", "token-classification", "question-answering"):
        folder = copy_folder(exported[task], tmp_path, task)
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tokenizer.enable_padding(length=100, pad_id=0, pad_token="[PAD]")
        tokenizer.enable_truncation(max_length=8)
        tokenizer.save(str(folder / "tokenizer.json"))
        assert json.loads((folder / "tokenizer.json").read_text())["truncation"]["max_length"] == 8
        baked = dox.load(folder, variant="fp32")
        assert_same(call(baked, sample(task)), call(pipes[task], sample(task)), atol=1e-6)
        assert_same(baked([TEXTS[0], LONG_TEXT]) if task != "question-answering" else
                    baked(question="Who?", context=LONG_TEXT, top_k=3),
                    pipes[task]([TEXTS[0], LONG_TEXT]) if task != "question-answering" else
                    pipes[task](question="Who?", context=LONG_TEXT, top_k=3), atol=1e-6)


def test_tokenizer_max_length_caps_the_model_length(exported, tmp_path, pipes):
    folder = copy_folder(exported["feature-extraction"], tmp_path)
    settings = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**settings, "model_max_length": 16}))
    assert np.array(dox.load(folder, variant="fp32")(LONG_TEXT)).shape == (1, 16, 32)
    (folder / "tokenizer_config.json").write_text(json.dumps({**settings, "model_max_length": int(1e30)}))  # "no limit"
    assert np.array(dox.load(folder, variant="fp32")(LONG_TEXT)).shape == (1, 512, 32)


@pytest.mark.parametrize("task", ["text-classification", "token-classification", "fill-mask", "feature-extraction",
                                  "question-answering", "multiple-choice"])
def test_optimum_folder_without_manifest(pipes, exported, tmp_path, task):
    folder = copy_folder(exported[task], tmp_path)
    (folder / MANIFEST_NAME).unlink()
    pipe = dox.load(folder)
    assert pipe.task == task and pipe.variant == "quantized"
    fp32 = dox.load(folder, variant="fp32")
    assert_same(call(fp32, sample(task)), call(pipes[task], sample(task)), atol=1e-6)


@pytest.mark.parametrize("task", ["token-classification", "fill-mask"])
def test_optimum_folder_without_architectures(exported, tmp_path, task):
    """Per-token logits: the vocabulary size tells fill-mask from token-classification."""
    folder = copy_folder(exported[task], tmp_path)
    (folder / MANIFEST_NAME).unlink()
    config = json.loads((folder / "config.json").read_text())
    del config["architectures"]
    (folder / "config.json").write_text(json.dumps(config))
    assert dox.load(folder, variant="fp32").task == task


@pytest.mark.parametrize("content", [b"", b"not an onnx model at all", b"\x08\x07\x12\x04junk" * 10, "half"])
def test_a_damaged_model_file_fails_at_load(exported, tmp_path, content):
    folder = copy_folder(exported["text-classification"], tmp_path)
    model = folder / "model.onnx"
    if content == "half":
        data = model.read_bytes()
        content = data[: len(data) // 2]
    model.write_bytes(content)
    with pytest.raises(ArtifactError, match=r"cannot load .*model\.onnx .*the file is damaged or not an ONNX model"):
        dox.load(folder, variant="fp32")


def test_missing_files_fail_at_load(exported, tmp_path):
    source = exported["text-classification"]
    with pytest.raises(ArtifactError, match="no folder at"):
        dox.load(tmp_path / "nowhere")
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(ArtifactError, match="no folder at"):
        dox.load(tmp_path / "a_file")

    no_graphs = copy_folder(source, tmp_path, "no_graphs")
    for graph in no_graphs.glob("*.onnx"):
        graph.unlink()
    with pytest.raises(ArtifactError, match=r"holds no ONNX model for cpu"):
        dox.load(no_graphs)
    with pytest.raises(ArtifactError, match=r"has no fp32 variant \(model.onnx\)"):
        dox.load(no_graphs, variant="fp32")

    no_tokenizer = copy_folder(source, tmp_path, "no_tokenizer")
    (no_tokenizer / "tokenizer.json").unlink()
    with pytest.raises(ArtifactError, match=r"no tokenizer.json in .*needs its tokenizer"):
        dox.load(no_tokenizer)

    bad_tokenizer = copy_folder(source, tmp_path, "bad_tokenizer")
    (bad_tokenizer / "tokenizer.json").write_text("{not json")
    with pytest.raises(ArtifactError, match=r"cannot read .*tokenizer.json"):
        dox.load(bad_tokenizer)

    no_config = copy_folder(source, tmp_path, "no_config")
    (no_config / "config.json").unlink()
    with pytest.raises(ConfigError, match=r"no config.json"):
        dox.load(no_config)

    bad_manifest = copy_folder(source, tmp_path, "bad_manifest")
    (bad_manifest / MANIFEST_NAME).write_text("{")
    with pytest.raises(ArtifactError, match=r"is not valid JSON"):
        dox.load(bad_manifest)

    bad_settings = copy_folder(source, tmp_path, "bad_settings")
    (bad_settings / "tokenizer_config.json").write_bytes(b"\xff\xfe")
    with pytest.raises(ArtifactError, match=r"tokenizer_config.json is not valid JSON"):
        dox.load(bad_settings)
