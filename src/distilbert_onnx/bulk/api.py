"""The public entry points of bulk inference, importing their engines only when called (pyarrow for
files, ray for Ray), so that `distilbert_onnx.bulk` imports neither."""

from __future__ import annotations

import importlib
from pathlib import Path

from ..errors import MissingExtraError, OptionError
from .bad_rows import FAIL

ENGINES = ("local", "ray")


def predict_file(folder, input, output, *, columns: dict | None = None, id_column: str | None = None,
                 keep_columns=(), result_column: str = "result", options: dict | None = None,
                 on_error: str = FAIL, errors: str | Path | None = None, resume: bool = False, force: bool = False,
                 output_format: str | None = None, part_rows: int | None = None, batch_size: int = 32,
                 device: str = "cpu", variant: str = "auto", backend: str = "auto", threads: int | None = None,
                 engine: str = "local",
                 ray_address: str | None = None, workers: int = 1, threads_per_worker: int = 1, progress=None):
    """Score the table `input` with FOLDER's model into `output`; returns a Summary.

    `columns` maps the task's fields to input columns ({"text": "body"}; required fields default to
    their own names). The output holds `id_column`, `keep_columns` and the result columns.
    """
    local = _require("local", "pyarrow", "files")
    from ..runtime.pipelines import load_pipeline as load
    from .columns import ColumnMap
    from .fingerprint import model_fingerprint

    if engine not in ENGINES:
        raise OptionError(f"engine must be local or ray, got {engine!r}")
    if engine == "ray" and resume:
        raise OptionError("--resume works with the local engine only: run the Ray job again from the start")
    options = dict(options or {})
    load_options = {"device": device, "variant": variant, "backend": backend}
    pipe = load(folder, **load_options, threads=threads)
    column_map = ColumnMap.for_task(pipe.context.spec, dict(columns or {}), id_column, tuple(keep_columns),
                                    result_column)
    job = local.plan_job(input, output, column_map, options=options, model=model_fingerprint(pipe), on_error=on_error,
                         errors_file=errors, folder_format=output_format,
                         part_rows=part_rows or local.DEFAULT_PART_ROWS)
    if engine == "local":
        return local.predict_file(pipe, job, options=options, batch_size=batch_size, resume=resume,
                                  force=force, progress=progress)
    _require("ray_engine", "ray", "ray")
    from .ray_driver import predict_file_on_ray

    return predict_file_on_ray(pipe, job, folder=folder, load_options=load_options, options=options,
                               batch_size=batch_size, force=force, ray_address=ray_address, workers=workers,
                               threads_per_worker=threads_per_worker, progress=progress)


def predict_dataset(ds, folder, **options):
    """A Ray Dataset with FOLDER's results as columns; see ray_engine.predict_dataset."""
    return _require("ray_engine", "ray", "ray").predict_dataset(ds, folder, **options)


def _require(module: str, package: str, extra: str):
    """bulk's `module`, or a MissingExtraError naming the extra when `package` (or pyarrow) is missing."""
    try:
        return importlib.import_module(f"{__package__}.{module}")
    except ImportError as exc:
        if exc.name and exc.name.split(".")[0] in (package, "pyarrow"):
            raise MissingExtraError(f"this needs {exc.name.split('.')[0]}: pip install 'distilbert-onnx[{extra}]'") from None
        raise
