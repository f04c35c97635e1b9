"""Bulk inference on tables: Parquet, CSV or JSON Lines in, Parquet or JSON Lines out, one output row
per input row in input order, on this machine (`predict_file`) or on a Ray cluster (`predict_dataset`,
or `predict_file(..., engine="ray")`).

Needs pyarrow (the [files] extra) and, for Ray, ray[data] (the [ray] extra); `import distilbert_onnx`
imports neither.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from ..errors import MissingExtraError

__all__ = ["predict_file", "predict_dataset"]


def predict_file(folder, input, output, *, columns: dict | None = None, id_column: str | None = None,
                 keep_columns=(), result_column: str = "result", options: dict | None = None,
                 on_error: str = "fail", errors: str | Path | None = None, resume: bool = False, force: bool = False,
                 output_format: str | None = None, part_rows: int | None = None, batch_size: int = 32,
                 device: str = "cpu", variant: str = "auto", backend: str = "auto", threads: int | None = None,
                 engine: str = "local",
                 ray_address: str | None = None, workers: int = 1, threads_per_worker: int = 1, progress=None):
    """Score the table `input` with FOLDER's model into `output`; returns a Summary.

    `columns` maps the task's fields to input columns ({"text": "body"}; required fields default to
    their own names). The output holds `id_column`, `keep_columns` and the result columns.
    """
    engine_module = _require("local", "pyarrow", "files")
    from .. import load
    from ..errors import OptionError
    from .columns import ColumnMap
    from .fingerprint import model_fingerprint

    if engine not in ("local", "ray"):
        raise OptionError(f"engine must be local or ray, got {engine!r}")
    if engine == "ray" and resume:
        raise OptionError("--resume works with the local engine only: run the Ray job again from the start")
    options = dict(options or {})
    load_options = {"device": device, "variant": variant, "backend": backend}
    pipe = load(folder, **load_options, threads=threads)
    column_map = ColumnMap.for_task(pipe.context.spec, dict(columns or {}), id_column, tuple(keep_columns),
                                    result_column)
    model = model_fingerprint(pipe)
    job = engine_module.plan_job(input, output, column_map, options=options, model=model, on_error=on_error,
                                 errors_file=errors, folder_format=output_format,
                                 part_rows=part_rows or engine_module.DEFAULT_PART_ROWS)
    if engine == "local":
        return engine_module.predict_file(pipe, job, options=options, batch_size=batch_size, resume=resume,
                                          force=force, progress=progress)
    ray_engine = _require("ray_engine", "ray", "ray")
    pipe([], batch_size=batch_size, **options)  # refuse bad options before the cluster starts
    ray_engine.connect(ray_address, workers * threads_per_worker)
    from . import parts

    parts.start(job.output, resume=False, force=force)
    chunks = ray_engine.scored_chunks(job, folder=folder, options=options, batch_size=batch_size,
                                      load_options=load_options, workers=workers,
                                      threads_per_worker=threads_per_worker)
    types = engine_module.formats.open_table(job.input, column_map.needed, ()).types  # the input's, as locally
    with contextlib.closing(chunks):  # stops the Ray execution when the job stops early
        return engine_module.write_parts(job, chunks, 0, types, progress=progress)


def predict_dataset(ds, folder, **options):
    """A Ray Dataset with FOLDER's results as columns; see ray_engine.predict_dataset."""
    return _require("ray_engine", "ray", "ray").predict_dataset(ds, folder, **options)


def _require(module: str, package: str, extra: str):
    import importlib

    try:
        return importlib.import_module(f"{__name__}.{module}")
    except ImportError as exc:
        if exc.name and exc.name.split(".")[0] in (package, "pyarrow"):
            raise MissingExtraError(f"this needs {exc.name.split('.')[0]}: pip install 'distilbert-onnx[{extra}]'") from None
        raise
