"""The ASGI app: one served folder at the root, several under /models/{name}/, plus /health, /info,
/metrics, /openapi.json and /docs for the whole server.

Folders are loaded on a thread when the app starts (pipelines passed in ready-made are used as
they are); /health answers 503 while they load and again once shutdown has begun, 200 otherwise.
At shutdown every request already accepted is answered before the batchers stop. Errors are JSON
bodies {"error": ..., "type": ...}; an unexpected failure is a 500 whose body says to look at the
server log, never a traceback.

Starlette rather than FastAPI: the pipeline already checks inputs and options with its own
messages, so a second layer of request models (pydantic) would only say the same things in other
words and cost time on every request. Starlette's SchemaGenerator turns the endpoints' docstrings
into the OpenAPI document.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.schemas import SchemaGenerator

from ..versions import this_version
from ..errors import ArtifactError, OptionError
from ..runtime.pipelines import Pipeline, folder_task
from ..versions import package_version
from .auth import RequireApiKey
from .drain import CutOffGuard
from .endpoints import ClientGone, ModelService, json_response
from .limits import Limits
from .metrics import Metrics, RequestLog
from .requests import ERROR_TYPES, ClientError

logger = logging.getLogger("distilbert_onnx.serve")

DOCS_PAGE = """<!doctype html>
<html><head><title>distilbert-onnx serve</title>
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "openapi.json", dom_id: "#ui"});</script></body></html>
"""


class Server:
    """The served models and where the server is in its life: loading, ready, draining or failed."""

    def __init__(self, sources: Mapping[str, str | Path | Pipeline], load_options: dict, limits: Limits):
        self.sources = dict(sources)
        self.load_options = load_options
        self.limits = limits
        self.metrics = Metrics()
        self.services: dict[str, ModelService] = {}
        self.status = "loading"
        self.error: str | None = None
        self.schemas = SchemaGenerator({"openapi": "3.0.0", "info": {"title": "distilbert-onnx serve", "version": this_version()}})

    def load(self) -> None:
        """Load every folder (on a thread) and start its batcher; the server is ready when all are."""
        from ..runtime.pipelines import load_pipeline as load

        try:
            for name, source in self.sources.items():
                pipe = source if isinstance(source, Pipeline) else load(source, **self.load_options)
                if pipe.task != self.services[name].task:
                    raise ArtifactError(f"{name}: the graph is a {pipe.task} model but its folder says {self.services[name].task}")
                self.services[name].start(pipe)
        except Exception as exc:  # kept for /health; the server stays up to say why
            self.status, self.error = "failed", str(exc)
            for service in self.services.values():
                if service.batcher is None:
                    service.failure = str(exc)
            logger.error("could not load the models: %s", exc)
            return
        if self.status == "loading":
            self.status = "ready"

    def stop(self) -> None:
        self.status = "draining"
        for service in self.services.values():
            service.stop()

    # --- server-wide endpoints --------------------------------------------------------------------

    async def health(self, request):
        """Whether the server takes requests.
        ---
        summary: 200 when ready; 503 while loading, draining or after a failed load
        responses:
          200: {description: '{"status": "ready"}'}
          503: {description: '{"status": "loading" | "draining" | "failed", "error": ...}'}
        """
        body = {"status": self.status, **({"error": self.error} if self.error else {})}
        return json_response(body, status=200 if self.status == "ready" else 503)

    async def info(self, request):
        """The served models, the limits and the versions.
        ---
        summary: Every served model's task, labels, variant and device, the limits, and versions
        responses:
          200: {description: '{"models": {name: {...}}, "limits", "versions"}'}
        """
        models = {name: service.describe() for name, service in self.services.items() if service.pipe is not None}
        return json_response({"status": self.status, "models": models, "limits": self.limits.as_dict(),
                              "versions": request.app.state.versions})

    async def metrics_page(self, request):
        body, content_type = self.metrics.render()
        return Response(body, media_type=content_type)

    async def openapi(self, request):
        return json_response(self.schemas.get_schema(routes=request.app.routes))

    async def docs(self, request):
        return HTMLResponse(DOCS_PAGE)


def build_app(
    folders: str | Path | Pipeline | Sequence[str | Path | Pipeline] | Mapping[str, str | Path | Pipeline],
    *,
    device: str = "cpu",
    variant: str = "auto",
    threads: int | None = None,
    limits: Limits | None = None,
    api_key: str | None = None,
) -> Starlette:
    """The ASGI app serving `folders` (paths or loaded pipelines; a dict names them); with `api_key`,
    every request must send `Authorization: Bearer API_KEY` (auth.py)."""
    sources = _named(folders)
    limits = limits or Limits()
    server = Server(sources, {"device": device, "variant": variant, "threads": threads}, limits)
    for name, source in sources.items():  # the task decides the routes: read from the folder before loading
        task = source.task if isinstance(source, Pipeline) else folder_task(source).name
        server.services[name] = ModelService(name, task, limits, server.metrics)

    routes = [
        Route("/health", server.health, methods=["GET"]),
        Route("/metrics", server.metrics_page, methods=["GET"], include_in_schema=False),
        Route("/openapi.json", server.openapi, methods=["GET"], include_in_schema=False),
        Route("/docs", server.docs, methods=["GET"], include_in_schema=False),
    ]
    if len(server.services) == 1:
        routes += next(iter(server.services.values())).routes()
    else:
        routes.append(Route("/info", server.info, methods=["GET"]))
        routes += [Mount(f"/models/{name}", routes=service.routes()) for name, service in server.services.items()]
    paths = _paths(routes)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        loading = asyncio.get_running_loop().run_in_executor(None, server.load)
        try:
            yield
        finally:
            await loading
            await asyncio.get_running_loop().run_in_executor(None, server.stop)

    if api_key is not None and not api_key.strip():
        raise OptionError("the API key is empty: give a non-empty key, or none to serve without one")
    middleware = [Middleware(RequestLog, metrics=server.metrics, paths=paths), Middleware(CutOffGuard)]
    if api_key is not None:
        middleware.append(Middleware(RequireApiKey, key=api_key))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={
            ClientError: _client_error,
            HTTPException: _http_error,
            ClientGone: _client_gone,
            ClientDisconnect: _client_gone,
            Exception: _internal_error,
        },
        lifespan=lifespan,
    )
    app.state.server = server
    app.state.versions = {name: package_version(name) for name in ("distilbert-onnx", "onnxruntime", "tokenizers", "starlette")}
    return app


def _named(folders) -> dict[str, str | Path | Pipeline]:
    if isinstance(folders, Mapping):
        named = dict(folders)
    else:
        items = [folders] if isinstance(folders, (str, Path, Pipeline)) else list(folders)
        named = {}
        for item in items:
            name = (item.folder if isinstance(item, Pipeline) else Path(item)).resolve().name
            if name in named:
                raise OptionError(f"two folders are named {name!r}: serve them under names of their own "
                                  "(a dict {name: folder} in Python)")
            named[name] = item
    if not named:
        raise OptionError("no folder to serve: give at least one")
    for name in named:
        if not name or "/" in name:
            raise OptionError(f"{name!r} cannot be a model name in a URL")
    return named


def _paths(routes) -> set[str]:
    paths = set()
    for route in routes:
        if isinstance(route, Mount):
            paths |= {route.path + child.path for child in route.routes}
        else:
            paths.add(route.path)
    return paths


async def _client_error(request, exc: ClientError):
    return json_response(exc.body(), status=exc.status, headers=exc.headers)


async def _http_error(request, exc: HTTPException):
    if exc.status_code == 404:
        message = f"no such path: {request.url.path} (see /openapi.json for the endpoints)"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    else:
        message = exc.detail
    return json_response({"error": message, "type": ERROR_TYPES.get(exc.status_code, "http_error")},
                         status=exc.status_code, headers=exc.headers)


async def _client_gone(request, exc):
    return json_response({"error": "the client closed the connection", "type": ERROR_TYPES[499]}, status=499)


async def _internal_error(request, exc: Exception):
    logger.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
    return json_response({"error": "internal error: see the server log", "type": ERROR_TYPES[500]}, status=500)
