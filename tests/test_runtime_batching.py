"""The runtime's batching, streaming and threads: length-bucketed batches padded to their longest
row, results in input order, iterators consumed lazily, one pipeline shared by threads."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from runtime_helpers import LONG_TEXT, MEDIUM_TEXT, TEXTS, assert_same, call, sample

import distilbert_onnx as dox
from distilbert_onnx.runtime.batching import chunks, map_batches, pad, plan_batches
from distilbert_onnx.runtime.pipelines.base import BATCHES_PER_CHUNK


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


@pytest.mark.slow
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


@pytest.mark.slow
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
