"""`distilbert-onnx serve`: folders behind an HTTP server with dynamic batching (the [serve] extra)."""

from __future__ import annotations

import click

from ..serving.limits import Limits
from ..variants import AUTO, VARIANTS
from .app import main, progress

DEFAULTS = Limits()


@main.command()
@click.argument("folders", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 for every interface).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="0 takes a free port.")
@click.option("--device", type=click.Choice(["cpu", "cuda", "auto"]), default="cpu", show_default=True)
@click.option("--variant", type=click.Choice([AUTO, *VARIANTS]), default="auto", show_default=True)
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads per model [default: all cores].")
@click.option("--max-batch-tokens", type=click.IntRange(min=1), default=DEFAULTS.max_batch_tokens, show_default=True,
              help="Tokens in one batch (padded tokens in one model call); 1 turns batching off.")
@click.option("--min-batch-fill", type=click.FloatRange(0, 1), default=DEFAULTS.min_batch_fill, show_default=True,
              help="Share of real tokens (not padding) each model call keeps at least; 0 batches rows of any length together.")
@click.option("--max-wait-ms", type=click.FloatRange(min=0), default=DEFAULTS.max_wait_ms, show_default=True,
              help="Longest wait for a batch to fill.")
@click.option("--max-inputs", type=click.IntRange(min=1), default=DEFAULTS.max_inputs, show_default=True,
              help="Inputs in one request (413 beyond).")
@click.option("--max-body-bytes", type=click.IntRange(min=1), default=DEFAULTS.max_body_bytes, show_default=True,
              help="Bytes in one request body (413 beyond).")
@click.option("--max-queue", type=click.IntRange(min=1), default=DEFAULTS.max_queue, show_default=True,
              help="Rows waiting for the model (503 with Retry-After beyond).")
@click.option("--log-level", type=click.Choice(["warning", "info", "debug"]), default="info", show_default=True,
              help="info: one line per request.")
def serve(folders, host, port, device, variant, threads, log_level, **limits):
    """Serve FOLDERS over HTTP: POST /predict, POST /v1/embeddings (feature-extraction), GET /health,
    /info, /metrics, /docs. One folder is served at the root, several under /models/{folder name}/."""
    from .. import load

    try:
        from ..serving.server import build_app
        from ..serving.run import serve_app
    except ImportError as exc:
        raise click.ClickException(f"serve needs the [serve] extra ({exc.name} is missing): "
                                   "pip install 'distilbert-onnx[serve]'") from None
    pipes = []
    for folder in folders:
        pipe = load(folder, device=device, variant=variant, threads=threads)
        progress(f"{folder}: {pipe.task} on {pipe.device} with the {pipe.variant} graph")
        pipes.append(pipe)
    app = build_app(pipes, limits=Limits(**limits))
    serve_app(app, host, port, log_level, echo=progress)
