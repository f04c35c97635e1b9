"""An optional API key: with one set, every request must carry `Authorization: Bearer KEY`.

As in text-embeddings-inference, the key covers every route, /health and /metrics included (a
Kubernetes probe or a Prometheus scrape sends the header too); without the header, or with another
key, the answer is 401 with a JSON error body and `WWW-Authenticate: Bearer`. The key is compared in
constant time (hmac.compare_digest) and never logged.
"""

from __future__ import annotations

import hmac
import json
import logging

logger = logging.getLogger("distilbert_onnx.serve")

ENVIRONMENT_VARIABLE = "DISTILBERT_ONNX_API_KEY"


class RequireApiKey:
    """ASGI middleware: 401 for any HTTP request without the key."""

    def __init__(self, app, key: str):
        self.app = app
        self.key = key.encode("utf-8")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or self._authorized(scope):
            return await self.app(scope, receive, send)
        logger.info("%s %s 401: no valid API key", scope["method"], scope["path"])
        body = json.dumps({"error": "this server needs an API key: send the header Authorization: Bearer KEY",
                           "type": "unauthorized"}).encode("utf-8")
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"www-authenticate", b'Bearer realm="distilbert-onnx"')]})
        await send({"type": "http.response.body", "body": body})

    def _authorized(self, scope) -> bool:
        given = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                given = value
        scheme, _, token = given.partition(b" ")
        return hmac.compare_digest(token.strip(), self.key) and scheme.lower() == b"bearer"
