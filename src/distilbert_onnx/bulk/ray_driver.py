"""The driver of a file job on Ray: the job planned as for the local engine, its rows scored by the
cluster's actors (ray_engine.py), and the scored chunks written here, in input order, into the same
parts, errors and output as the local engine writes (local.write_parts)."""

from __future__ import annotations

import contextlib

from ..tables import readers
from . import parts, ray_engine
from .local import Job, Summary, write_parts


def predict_file_on_ray(pipe, job: Job, *, folder, load_options: dict, options: dict, batch_size: int, force: bool,
                        ray_address: str | None, workers: int, threads_per_worker: int, progress=None) -> Summary:
    """Score `job` on the cluster at `ray_address` (or a local one) with `workers` actors of
    `threads_per_worker` CPUs, each loading FOLDER with `load_options`; `pipe` (the same model, loaded
    here) refuses bad options before the cluster starts."""
    pipe([], batch_size=batch_size, **options)
    ray_engine.connect(ray_address, workers * threads_per_worker)
    parts.start(job.output, resume=False, force=force)
    chunks = ray_engine.scored_chunks(job, folder=folder, options=options, batch_size=batch_size,
                                      load_options=load_options, workers=workers,
                                      threads_per_worker=threads_per_worker)
    types = readers.open_table(job.input, job.columns.needed, ()).types  # the input's, as locally
    with contextlib.closing(chunks):  # stops the Ray execution when the job stops early
        return write_parts(job, chunks, 0, types, progress=progress)
