"""The endpoints of one served folder: /predict, /v1/embeddings (feature-extraction) and /info.

A request goes: body read and checked (requests.py) -> `pipe.prepare` on a worker thread of the
event loop's pool (bad inputs and options become 422 here, before any queueing) -> its rows through
the model's batcher -> `pipe.finish` and JSON encoding on the pool again. The event loop only moves
bytes and futures. The docstrings' YAML (after `---`) is the endpoint's OpenAPI description.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.routing import Route

from ..runtime.batching import DEFAULT_BATCH_SIZE, plan_batches
from ..runtime.pipelines import Pipeline
from ..runtime.pipelines.base import plain
from ..tasks import get_task
from .batcher import Batcher, QueueFull, Ticket
from .limits import Limits
from .metrics import Metrics
from .requests import ClientError, check_count, embeddings_call, predict_call, read_json

RETRY_AFTER_SECONDS = "1"


class ClientGone(Exception):
    """The client closed the connection before its answer was ready."""


class ModelService:
    """One served folder: its pipeline, the batcher in front of its model, and its endpoints."""

    def __init__(self, name: str, task: str, limits: Limits, metrics: Metrics, pipe: Pipeline | None = None):
        self.name = name
        self.task = task
        self.pipe = pipe  # set when loaded
        self.failure: str | None = None  # why it could not be loaded
        self.limits = limits
        self.metrics = metrics
        self.batcher: Batcher | None = None

    def start(self, pipe: Pipeline) -> None:
        """Serve `pipe`: its batcher's worker thread starts."""
        self.pipe = pipe
        limits = self.limits
        self.batcher = Batcher(self._run_call, limits.max_batch_tokens, limits.max_wait_ms, limits.max_queue,
                               on_batch=self.metrics.batch_observer(self.name), name=self.name, plan=self._plan)
        self.metrics.watch_queue(self.name, lambda: self.batcher.depth)

    def stop(self) -> None:
        """Run what is queued, then stop the worker thread."""
        if self.batcher is not None:
            self.batcher.close()

    def _plan(self, lengths: list[int]) -> list[list[int]]:
        """A batch's rows in model calls as `pipe()` makes them (at most 32 rows and max_batch_tokens
        padded tokens, at least min_batch_fill of them real), the shortest calls first."""
        limits = self.limits
        return plan_batches(lengths, DEFAULT_BATCH_SIZE, limits.max_batch_tokens, limits.min_batch_fill)[::-1]

    def _run_call(self, rows: list) -> list:
        """One planned model call: run_rows keeps it whole (it fits the caps it was planned under)."""
        return self.pipe.run_rows(rows, batch_size=len(rows), max_tokens=self.limits.max_batch_tokens)

    def routes(self) -> list[Route]:
        routes = [Route("/predict", self.predict, methods=["POST"]), Route("/info", self.info, methods=["GET"])]
        if get_task(self.task).gives_embeddings:
            routes.append(Route("/v1/embeddings", self.embeddings, methods=["POST"]))
        return routes

    def describe(self) -> dict:
        if self.pipe is None:
            return {"name": self.name, "task": self.task, "status": "loading"}
        config = self.pipe.context.config
        described = {"name": self.name, "task": self.task, "variant": self.pipe.variant, "device": self.pipe.device}
        if self.pipe.context.spec.has_labels:
            described["labels"] = [config.id2label[index] for index in sorted(config.id2label)]
        described["max_length"] = config.max_position_embeddings
        return described

    # --- endpoints ------------------------------------------------------------------------------

    async def predict(self, request):
        """Run the task: the answer is what `pipe(inputs, **parameters)` returns.
        ---
        summary: Run the model's task on one input or a list of inputs
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [inputs]
                properties:
                  inputs:
                    description: a text, a list of texts, {"text", "text_pair"}, {"question", "context"},
                      or {"prompt", "choices"}, as the pipeline takes them
                  parameters:
                    type: object
                    description: the task's options (top_k, aggregation_strategy, pooling, ...)
              example: {"inputs": "I love this!", "parameters": {"top_k": 2}}
        responses:
          200: {description: what the pipeline returns for the same call}
          400: {description: the body is not JSON}
          413: {description: too many inputs, or too large a body}
          422: {description: wrong inputs or parameters, with the pipeline's own message}
          503: {description: the queue is full (see Retry-After), or the model is still loading}
        """
        self._check_loaded()
        inputs, parameters = predict_call(await read_json(request, self.limits), self.limits)
        prepared = await self._prepare(inputs, parameters)
        outputs = await self._outputs(prepared.flat_rows, request)
        return await run_in_threadpool(lambda: json_response(self.pipe.finish(prepared, outputs)))

    async def embeddings(self, request):
        """Sentence vectors in OpenAI's shape: mean-pooled, unit length.
        ---
        summary: Embed one text or a list of texts (OpenAI's embeddings API)
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [input]
                properties:
                  input: {description: a text or a list of texts}
                  model: {type: string, description: the served model's name (another is refused with 404)}
                  encoding_format: {type: string, enum: [float, base64]}
                  user: {type: string}
              example: {"input": ["A first text.", "A second one."]}
        responses:
          200: {description: '{"object": "list", "data": [{"object": "embedding", "index", "embedding"}],
            "model", "usage": {"prompt_tokens", "total_tokens"}}'}
          404: {description: a `model` other than the one served}
          413: {description: too many inputs, or too large a body}
          422: {description: wrong input}
          503: {description: the queue is full (see Retry-After), or the model is still loading}
        """
        self._check_loaded()
        texts, encoding = embeddings_call(await read_json(request, self.limits), self.limits, self.name)
        prepared = await self._prepare(texts, {"pooling": "mean", "normalize": True, "return_tensors": True})
        outputs = await self._outputs(prepared.flat_rows, request)
        tokens = sum(row.length for row in prepared.flat_rows)

        def answer() -> Response:
            vectors = self.pipe.finish(prepared, outputs)
            vectors = [vectors] if prepared.single else vectors
            data = [{"object": "embedding", "index": index, "embedding": _encode_vector(vector, encoding)}
                    for index, vector in enumerate(vectors)]
            return json_response({"object": "list", "data": data, "model": self.name,
                                  "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

        return await run_in_threadpool(answer)

    async def info(self, request):
        """What this model is and how it is served.
        ---
        summary: The model's task, labels, variant and device, and the server's limits
        responses:
          200: {description: '{"name", "task", "labels", "variant", "device", "max_length", "limits", "versions"}'}
        """
        return json_response({**self.describe(), "limits": self.limits.as_dict(), "versions": request.app.state.versions})

    # --- the steps of a request -----------------------------------------------------------------

    def _check_loaded(self) -> None:
        if self.failure:
            raise ClientError(503, f"the model could not be loaded ({self.failure}); see the server log")
        if self.batcher is None:
            raise ClientError(503, "the model is still loading: retry shortly", headers={"Retry-After": RETRY_AFTER_SECONDS})

    async def _prepare(self, inputs: Any, parameters: dict):
        """Check and tokenize off the event loop; the pipeline's TypeError / ValueError become 422."""
        try:
            prepared = await run_in_threadpool(lambda: self.pipe.prepare(inputs, **parameters))
        except (TypeError, ValueError, OverflowError) as exc:
            raise ClientError(422, " ".join(str(exc).split())[:1000]) from None
        check_count(len(prepared.items), self.limits)
        return prepared

    async def _outputs(self, rows: list, request) -> list:
        """The model's outputs for the rows, through the batcher; ClientGone if the client leaves first."""
        ticket = Ticket(rows, asyncio.get_running_loop())
        try:
            self.batcher.submit(ticket)
        except QueueFull as exc:
            raise ClientError(503, f"the server is busy: {exc}; retry later", "overloaded",
                              headers={"Retry-After": RETRY_AFTER_SECONDS}) from None
        if ticket.future.done():
            return ticket.future.result()
        watcher = asyncio.ensure_future(_disconnected(request))
        try:
            await asyncio.wait({ticket.future, watcher}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            self.batcher.cancel(ticket)
            raise
        finally:
            watcher.cancel()
        if not ticket.future.done():
            self.batcher.cancel(ticket)
            raise ClientGone()
        return ticket.future.result()


async def _disconnected(request) -> None:
    """Returns when the client closes the connection (the body has been read by then)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _encode_vector(vector: np.ndarray, encoding: str):
    if encoding == "base64":
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return vector.tolist()


def json_response(content: Any, status: int = 200, headers: dict | None = None) -> Response:
    body = json.dumps(content, ensure_ascii=False, separators=(",", ":"), default=plain).encode("utf-8")
    return Response(body, status_code=status, headers=headers, media_type="application/json")
