"""`distilbert-onnx serve` as a library: `app(folders, ...)` is the ASGI app, for those who mount it
in their own stack or run it under their own server. Needs the [serve] extra (Starlette, uvicorn,
prometheus-client, PyYAML); importing this package imports none of them until `app` is called.

    import distilbert_onnx as dox
    application = dox.serve.app(["artifacts/sst2"], max_batch_tokens=8192, max_wait_ms=5)
    # uvicorn.run(application, port=8000)
"""

from __future__ import annotations

from ..errors import MissingExtraError

__all__ = ["app"]


def app(folders, *, device: str = "cpu", variant: str = "auto", threads: int | None = None, **limits):
    """The ASGI app serving `folders`: a folder, a list of them (one is served at the root, several
    under /models/{folder name}/), a {name: folder} dict, or loaded pipelines in their place.

    `limits` are those of Limits: max_batch_tokens, max_wait_ms, max_inputs, max_body_bytes, max_queue.
    Folders are loaded when the app starts (its lifespan); /health says 503 until they are.
    """
    try:
        from .server import build_app
        from .limits import Limits
    except ImportError as exc:
        raise MissingExtraError(
            f"serving needs the [serve] extra ({exc.name} is missing): pip install 'distilbert-onnx[serve]'"
        ) from None
    return build_app(folders, device=device, variant=variant, threads=threads, limits=Limits(**limits))
