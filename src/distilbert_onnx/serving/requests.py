"""Request bodies: read under the size limit, parsed as JSON, and checked for the fields each endpoint
takes. Every problem is a ClientError carrying the HTTP status, a one-line message and an error type;
what the task itself accepts (inputs, parameters) is left to the pipeline, which says so in its own words.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from .limits import Limits

# HTTP status -> the `type` of the JSON error body.
ERROR_TYPES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    408: "timeout",
    413: "too_large",
    422: "invalid_input",
    499: "client_closed_request",
    500: "internal",
    503: "unavailable",
}

PREDICT_FIELDS = ("inputs", "parameters")
EMBEDDING_FIELDS = ("input", "model", "encoding_format", "user")
ENCODINGS = ("float", "base64")
# A \u escape of a UTF-16 surrogate: only then can a parsed body hold a lone surrogate.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class ClientError(Exception):
    """A request the server refuses: status, one-line message, error type and extra headers."""

    def __init__(self, status: int, message: str, kind: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.kind = kind or ERROR_TYPES[status]
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": str(self), "type": self.kind}


async def read_json(request, limits: Limits) -> Any:
    """The request body as JSON: 413 beyond max_body_bytes (announced or read), 400 if it is not JSON."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise _too_large(int(declared), limits)
    body = bytearray()
    try:
        async with asyncio.timeout(limits.client_timeout_s):
            async for chunk in request.stream():
                body += chunk
                if len(body) > limits.max_body_bytes:
                    raise _too_large(len(body), limits)
    except TimeoutError:
        raise ClientError(408, f"the body did not arrive within {limits.client_timeout_s:g} s (--client-timeout): "
                               "send the whole request at once", headers={"Connection": "close"}) from None
    if not body:
        raise ClientError(400, "the body is empty: send a JSON object")
    try:
        parsed = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise ClientError(400, "the body is not UTF-8 text: send JSON") from None
    except json.JSONDecodeError as exc:
        raise ClientError(400, f"the body is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise ClientError(400, "the body nests arrays or objects too deeply: send the inputs as a flat list") from None
    except ValueError:  # an integer of more than 4,300 digits
        raise ClientError(400, "the body holds an integer of more than 4,300 digits: send numbers of a usable size") from None
    if _SURROGATE_ESCAPE.search(body):
        _check_no_lone_surrogate(parsed)
    return parsed


def _check_no_lone_surrogate(parsed: Any) -> None:
    """A 422 when the body holds a \\ud800-style escape that pairs with nothing: not a character."""
    try:
        json.dumps(parsed, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(exc.object[exc.start])
        raise ClientError(422, f"the body holds a lone surrogate (\\u{code:04x}), which is not a character: send "
                               "valid Unicode text (a surrogate escape must be one of a pair)") from None


def _too_large(size: int, limits: Limits) -> ClientError:
    return ClientError(413, f"the body has {size} bytes; this server takes at most {limits.max_body_bytes} "
                            "(--max-body-bytes): send fewer inputs per request")


def predict_call(body: Any, limits: Limits) -> tuple[Any, dict]:
    """(inputs, parameters) of a /predict body: {"inputs": ..., "parameters": {...}}."""
    _check_fields(body, PREDICT_FIELDS, "inputs", '{"inputs": ..., "parameters": {...}}')
    parameters = body.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ClientError(422, f'"parameters" is {_json_type(parameters)}: send an object of the task\'s options')
    inputs = body["inputs"]
    check_count(len(inputs) if isinstance(inputs, list) else 1, limits)
    return inputs, parameters


def embeddings_call(body: Any, limits: Limits, served: str) -> tuple[str | list, str]:
    """(input, encoding_format) of a /v1/embeddings body in OpenAI's shape; a `model` other than the
    `served` name is refused, as OpenAI refuses a model it does not have."""
    _check_fields(body, EMBEDDING_FIELDS, "input", '{"input": "text" or ["text", ...]}')
    if body.get("model") not in (None, served):
        raise ClientError(404, f"the model {body['model']!r} is not served here: this route serves {served!r} "
                               "(leave out \"model\", or send that name)", "model_not_found")
    texts = body["input"]
    if isinstance(texts, list):
        if not texts:
            raise ClientError(422, '"input" is an empty list: send at least one text')
        check_count(len(texts), limits)
    encoding = body.get("encoding_format") or "float"
    if encoding not in ENCODINGS:
        raise ClientError(422, f'"encoding_format" must be "float" or "base64", got {encoding!r}')
    return texts, encoding


def check_count(count: int, limits: Limits) -> None:
    if count > limits.max_inputs:
        raise ClientError(413, f"{count} inputs in one request; this server takes at most {limits.max_inputs} "
                               "(--max-inputs): split them over several requests")


def _check_fields(body: Any, fields: tuple[str, ...], required: str, shape: str) -> None:
    if not isinstance(body, dict):
        raise ClientError(422, f"the body is {_json_type(body)}: send a JSON object, {shape}")
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise ClientError(422, f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
                               f"in the body (it takes {', '.join(fields)})")
    if required not in body:
        raise ClientError(422, f'"{required}" is missing: send {shape}')


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)
