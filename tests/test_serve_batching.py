"""Dynamic batching: the batcher on a real pipeline (requests merged, split, cancelled, refused when
the queue is full), and through a real server: concurrent callers share batches and each gets its
own answer; a client that disconnects does not stall the others."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import httpx
import pytest
from runtime_helpers import LONG_TEXT, MEDIUM_TEXT, TEXTS, assert_same
from serve_helpers import jsonable, metric, running, wait_ready

import distilbert_onnx as dox
from distilbert_onnx.serving.batcher import Batcher, QueueFull, Ticket

# int8 graphs quantize activations per batch, so a row's outputs move slightly with its batch-mates.
INT8_ATOL = 2e-3
WORDS = LONG_TEXT.split()
# 40 different texts of 3 to 42 words
CORPUS = [" ".join(WORDS[i : i + 3 + i]) for i in range(40)]


@pytest.fixture(scope="module")
def pipe(exported):
    return dox.load(exported["text-classification"])


class Gate:
    """run_rows behind a gate the test opens: the first batch waits until then; every batch is noted."""

    def __init__(self, pipe):
        self.pipe = pipe
        self.opened = threading.Event()
        self.batches: list[list] = []

    def __call__(self, rows):
        self.opened.wait(10)
        self.batches.append(rows)
        return self.pipe.run_rows(rows)


async def taken(batcher) -> None:
    """Until the worker has taken every queued row."""
    while batcher.depth:
        await asyncio.sleep(0.001)


def tickets_for(pipe, loop, calls):
    prepared = [pipe.prepare(inputs) for inputs in calls]
    return prepared, [Ticket(p.flat_rows, loop) for p in prepared]


def test_requests_are_merged_and_answered_each_in_its_order(pipe):
    async def scenario():
        loop = asyncio.get_running_loop()
        gate = Gate(pipe)
        batcher = Batcher(gate, max_batch_tokens=10_000, max_wait_ms=0, max_queue=100)
        calls = [TEXTS[:2], [TEXTS[2]], TEXTS[3:], [CORPUS[5]]]
        prepared, tickets = tickets_for(pipe, loop, calls)
        batcher.submit(tickets[0])
        await taken(batcher)  # the first request waits at the gate; the others queue up meanwhile
        for ticket in tickets[1:]:
            batcher.submit(ticket)
        gate.opened.set()
        outputs = await asyncio.gather(*(ticket.future for ticket in tickets))
        batcher.close()
        return gate.batches, [pipe.finish(p, o) for p, o in zip(prepared, outputs)]

    batches, results = asyncio.run(scenario())
    assert [len(batch) for batch in batches] == [2, 4]  # the three queued requests ran as one batch
    for inputs, result in zip([TEXTS[:2], [TEXTS[2]], TEXTS[3:], [CORPUS[5]]], results):
        assert_same(result, pipe(inputs), atol=INT8_ATOL)


def test_a_large_request_is_split_over_batches(pipe):
    async def scenario():
        gate = Gate(pipe)
        gate.opened.set()
        batcher = Batcher(gate, max_batch_tokens=100, max_wait_ms=0, max_queue=1000)
        prepared, (ticket,) = tickets_for(pipe, asyncio.get_running_loop(), [CORPUS])
        batcher.submit(ticket)
        outputs = await ticket.future
        batcher.close()
        return gate.batches, pipe.finish(prepared[0], outputs)

    batches, result = asyncio.run(scenario())
    assert len(batches) > 1 and all(sum(row.length for row in batch) <= 100 for batch in batches if len(batch) > 1)
    assert_same(result, pipe(CORPUS), atol=INT8_ATOL)


def test_a_cancelled_request_is_dropped_from_the_queue(pipe):
    async def scenario():
        gate = Gate(pipe)
        batcher = Batcher(gate, max_batch_tokens=10_000, max_wait_ms=0, max_queue=100)
        _, tickets = tickets_for(pipe, asyncio.get_running_loop(), [[TEXTS[0]], CORPUS[:5], [TEXTS[1]]])
        batcher.submit(tickets[0])
        await taken(batcher)
        for ticket in tickets[1:]:
            batcher.submit(ticket)
        assert batcher.depth == 6
        batcher.cancel(tickets[1])
        assert batcher.depth == 1 and tickets[1].future.cancelled()
        gate.opened.set()
        await asyncio.gather(tickets[0].future, tickets[2].future)
        batcher.close()
        return gate.batches

    batches = asyncio.run(scenario())
    assert [len(batch) for batch in batches] == [1, 1]


def test_a_full_queue_refuses_requests_but_an_empty_one_takes_any(pipe):
    async def scenario():
        gate = Gate(pipe)
        batcher = Batcher(gate, max_batch_tokens=10_000, max_wait_ms=0, max_queue=3)
        _, tickets = tickets_for(pipe, asyncio.get_running_loop(), [[TEXTS[0]], CORPUS[:5], [TEXTS[1]], TEXTS[:3]])
        batcher.submit(tickets[0])
        await taken(batcher)  # the worker holds the first request at the gate
        batcher.submit(tickets[1])  # five rows into an empty queue of three: taken
        with pytest.raises(QueueFull, match="5 rows are waiting and this request adds 1"):
            batcher.submit(tickets[2])
        gate.opened.set()
        await asyncio.gather(tickets[0].future, tickets[1].future)
        batcher.submit(tickets[3])
        await tickets[3].future
        batcher.close()

    asyncio.run(scenario())


@pytest.fixture(scope="module")
def server(pipe):
    with running(dox.serve.app(pipe, max_wait_ms=100, max_batch_tokens=100_000)) as url:
        with httpx.Client() as client:
            wait_ready(client, url)
        yield url


def test_concurrent_callers_share_batches_and_get_their_own_answers(server, pipe):
    async def call_all():
        async with httpx.AsyncClient(timeout=30) as client:
            calls = [client.post(f"{server}/predict", json={"inputs": text}) for text in CORPUS[:24]]
            return await asyncio.gather(*calls), (await client.get(f"{server}/metrics")).text

    before = httpx.get(f"{server}/metrics").text
    responses, after = asyncio.run(call_all())
    for text, response in zip(CORPUS, responses):
        assert response.status_code == 200
        assert_same(response.json(), jsonable(pipe(text)), atol=INT8_ATOL)
    model = "text-classification"
    batches = metric(after, "distilbert_onnx_batch_rows_count", model=model) - metric(before, "distilbert_onnx_batch_rows_count", model=model)
    rows = metric(after, "distilbert_onnx_batch_rows_sum", model=model) - metric(before, "distilbert_onnx_batch_rows_sum", model=model)
    assert rows == 24 and batches < 24  # some batch held rows of several callers
    assert metric(after, "distilbert_onnx_batch_requests_sum", model=model) > metric(after, "distilbert_onnx_batch_requests_count", model=model)


def raw_request(url: str, body: bytes) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    head = f"POST /predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    sock.sendall(head.encode() + body)
    return sock


@pytest.mark.slow
def test_a_client_that_disconnects_does_not_stall_the_others(server, pipe):
    import json

    async def others():
        async with httpx.AsyncClient(timeout=30) as client:
            leaver = raw_request(server, json.dumps({"inputs": [LONG_TEXT] * 40}).encode())
            calls = asyncio.gather(*(client.post(f"{server}/predict", json={"inputs": text}) for text in CORPUS[:8]))
            leaver.close()  # gone before its answer, its rows queued with the others'
            return await calls

    for text, response in zip(CORPUS, asyncio.run(others())):
        assert_same(response.json(), jsonable(pipe(text)), atol=INT8_ATOL)
    deadline = time.monotonic() + 10
    while metric(httpx.get(f"{server}/metrics").text, "distilbert_onnx_requests_total", path="/predict", status="499") < 1:
        assert time.monotonic() < deadline, "the disconnect was not noticed"
        time.sleep(0.01)
    assert httpx.post(f"{server}/predict", json={"inputs": TEXTS[0]}).status_code == 200


@pytest.mark.slow
def test_a_full_queue_answers_503_with_retry_after(pipe):
    with running(dox.serve.app(pipe, max_queue=4, max_batch_tokens=1)) as url:
        async def flood():
            async with httpx.AsyncClient(timeout=30) as client:
                big = asyncio.ensure_future(client.post(f"{url}/predict", json={"inputs": [MEDIUM_TEXT] * 250}))
                # its 250 rows run one by one (batching off): wait until they are queued
                while metric((await client.get(f"{url}/metrics")).text, "distilbert_onnx_queue_rows") < 5:
                    assert not big.done()
                small = await client.post(f"{url}/predict", json={"inputs": "Hello"})
                return await big, small

        big, small = asyncio.run(flood())
    assert big.status_code == 200 and len(big.json()) == 250
    assert small.status_code == 503 and small.headers["retry-after"] == "1"
    assert small.json()["type"] == "overloaded" and "--max-queue 4" in small.json()["error"]


def test_fp32_results_do_not_depend_on_the_batch(exported):
    pipe = dox.load(exported["text-classification"], variant="fp32")
    with running(dox.serve.app(pipe, max_wait_ms=100)) as url:
        async def call_all():
            async with httpx.AsyncClient(timeout=30) as client:
                return await asyncio.gather(*(client.post(f"{url}/predict", json={"inputs": text, "parameters": {"top_k": None}})
                                              for text in CORPUS[:16]))

        responses = asyncio.run(call_all())
        batches = metric(httpx.get(f"{url}/metrics").text, "distilbert_onnx_batch_rows_count", model="text-classification")
    assert batches < 16
    for text, response in zip(CORPUS, responses):
        assert_same(response.json(), jsonable(pipe(text, top_k=None)), atol=1e-5)


@pytest.mark.parametrize("limits, message", [
    ({"max_wait_ms": -1}, "max_wait_ms must be a number of milliseconds >= 0"),
    ({"max_batch_tokens": 0}, "max_batch_tokens must be a positive integer"),
    ({"max_queue": 2.5}, "max_queue must be a positive integer"),
])
def test_bad_limits_are_refused_when_the_app_is_built(pipe, limits, message):
    with pytest.raises(ValueError, match=message):
        dox.serve.app(pipe, **limits)


def test_min_fill_keeps_rows_of_very_different_lengths_apart():
    from distilbert_onnx.runtime.batching import plan_batches

    lengths = [100, 20, 95, 18, 17]
    assert plan_batches(lengths, 32, 10_000) == [[0, 2, 1, 3, 4]]
    assert plan_batches(lengths, 32, 10_000, min_fill=0.8) == [[0, 2], [1, 3, 4]]
    assert plan_batches(lengths, 2, 10_000, min_fill=0.8) == [[0, 2], [1, 3], [4]]


def test_each_model_call_answers_its_requests_before_the_next_one_runs(pipe):
    async def scenario():
        loop = asyncio.get_running_loop()
        held = threading.Event()
        answered_before_b = []
        _, (first, a, b) = tickets_for(pipe, loop, [[TEXTS[0]], [TEXTS[1]], [TEXTS[2]]])

        def run_rows(rows):
            if rows[0] is first.rows[0]:
                held.wait(10)  # the batch of a and b queues up meanwhile
            elif rows[0] is b.rows[0]:  # b's call waits for a's answer: it comes only if a was delivered already
                deadline = time.monotonic() + 10
                while not a.future.done() and time.monotonic() < deadline:
                    time.sleep(0.001)
                answered_before_b.append(a.future.done())
            return pipe.run_rows(rows)

        batcher = Batcher(run_rows, 10_000, 0, 100, plan=lambda lengths: [[i] for i in range(len(lengths))])
        batcher.submit(first)
        await taken(batcher)
        batcher.submit(a)
        batcher.submit(b)
        held.set()
        await asyncio.gather(first.future, b.future)
        batcher.close()
        return answered_before_b

    assert asyncio.run(scenario()) == [True]
