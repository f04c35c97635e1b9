"""`benchmark`: latency and throughput of a folder's graphs, side by side, on this machine.

Each variant (or those asked for) runs on synthetic inputs of every batch size x sequence length
given: warm-up runs, then timed runs (at least `min_runs` and `min_seconds`). A row reports p50 /
p90 / p99 latency in milliseconds and throughput in sequences per second (batch size / mean
latency; for multiple choice a "sequence" is one prompt with its tasks.CHOICES choices).
`compare_torch` adds PyTorch eager rows for the source checkpoint, measured in the same process:
fp32, and fp16 on CUDA, both with torch's scaled_dot_product_attention as transformers uses by
default. On CUDA the ONNX sessions use IO binding.

The OpenVINO variants (`openvino`, `openvino-int8`) run as `load` runs them (runtime/backends.py):
the precision each ran in is in the result's "precisions" and under the table. Where openvino is not
installed they are left out of the default set, and the progress output says so.
"""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .config import load_config
from .errors import ArtifactError, MissingExtraError, OptionError
from .manifest import read_manifest
from .runtime.backends import open_variant
from .runtime.machine import cpu_model
from .runtime.openvino_model import import_openvino, openvino_available
from .runtime.pipelines import folder_task
from .runtime.session import check_threads, resolve_device
from .timing import measure, synthetic_feeds
from .variants import AUTO_PREFERENCE, OPENVINO, VARIANTS, choose_variant, present
from .versions import package_version


@dataclass
class Row:
    variant: str
    batch_size: int
    sequence_length: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    throughput: float


def benchmark_folder(
    folder: str | Path,
    *,
    variants: list[str] | None = None,
    batch_sizes: tuple[int, ...] = (1,),
    sequence_lengths: tuple[int, ...] = (128,),
    device: str = "cpu",
    threads: int | None = None,
    compare_torch: str | Path | None = None,
    warmup: int = 5,
    min_runs: int = 20,
    min_seconds: float = 2.0,
    echo=None,
) -> dict:
    """{"rows": [...], "machine": {...}} as DESIGN.md's benchmark JSON."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ArtifactError(f"no folder at {folder}")
    config = load_config(folder)
    device = resolve_device(device)
    names = _variants(folder, device, variants, echo)
    manifest = read_manifest(folder)
    spec = folder_task(folder, config=config, manifest=manifest, device=device)
    for length in sequence_lengths:
        if not 0 < length <= config.max_position_embeddings:
            raise OptionError(f"sequence length {length} is outside 1..{config.max_position_embeddings} (the model's maximum)")
    if any(size < 1 for size in batch_sizes):
        raise OptionError("batch sizes must be positive")
    threads = check_threads(threads)
    timing = {"warmup": warmup, "min_runs": min_runs, "min_seconds": min_seconds}
    rows, precisions = [], {}
    for name in names:
        model = open_variant(folder, VARIANTS[name], device, threads, manifest, config)
        precisions[name] = model.precision
        for batch_size in batch_sizes:
            for length in sequence_lengths:
                feeds = synthetic_feeds(spec, config.vocab_size, batch_size, length)
                rows.append(_row(name, batch_size, length, measure(lambda: model.run(feeds), **timing), echo))
    if compare_torch is not None:
        rows += _torch_rows(compare_torch, spec, config, device, threads, batch_sizes, sequence_lengths, timing, echo)
    openvino_used = any(VARIANTS[name].backend == OPENVINO for name in names)
    return {"rows": [asdict(row) for row in rows], "machine": machine(device, threads, openvino_used), "precisions": precisions}


def _variants(folder: Path, device: str, wanted: list[str] | None, echo) -> list[str]:
    if wanted:
        chosen = [choose_variant(folder, device, name) for name in wanted]
        if any(variant.backend == OPENVINO for variant in chosen):
            import_openvino()
        return [variant.name for variant in chosen]
    held = [variant for variant in VARIANTS.values() if device in variant.devices and present(folder, variant)]
    skipped = [variant.name for variant in held if variant.backend == OPENVINO and not openvino_available()]
    if skipped and echo:
        echo(f"openvino is not installed: {', '.join(skipped)} not measured (pip install 'distilbert-onnx[openvino]')")
    names = [variant.name for variant in held if variant.name not in skipped]
    if not names:
        files = ", ".join(variant.file for variant in AUTO_PREFERENCE[device])
        raise ArtifactError(f"{folder} holds no ONNX model to benchmark on {device} (looked for {files})")
    return names


def _row(variant: str, batch_size: int, length: int, seconds: np.ndarray, echo) -> Row:
    p50, p90, p99 = (float(np.percentile(seconds, q) * 1000) for q in (50, 90, 99))
    row = Row(variant, batch_size, length, round(p50, 3), round(p90, 3), round(p99, 3),
              round(batch_size / float(seconds.mean()), 2))
    if echo:
        echo(f"{variant:<13} batch {batch_size:>3} x {length:>4} tokens: p50 {p50:8.2f} ms, "
             f"{row.throughput:9.1f} seq/s ({len(seconds)} runs)")
    return row


def _torch_rows(checkpoint, spec, config, device, threads, batch_sizes, lengths, timing, echo) -> list[Row]:
    try:
        import torch

        from .exporting.checkpoint import load_checkpoint
        from .exporting.modeling import use_sdpa
    except ImportError as exc:
        raise MissingExtraError(f"--compare-torch needs PyTorch ({exc.name} is missing): pip install 'distilbert-onnx[export]'") from None
    torch.set_num_threads(threads)
    model = use_sdpa(load_checkpoint(checkpoint, spec.name).model)
    precisions = [("torch-fp32", torch.float32)] + ([("torch-fp16", torch.float16)] if device == "cuda" else [])
    rows = []
    for name, dtype in precisions:
        model = model.to(device=device, dtype=dtype)
        for batch_size in batch_sizes:
            for length in lengths:
                feeds = synthetic_feeds(spec, config.vocab_size, batch_size, length)
                inputs = [torch.from_numpy(feeds[key]).to(device) for key in ("input_ids", "attention_mask")]

                def run():
                    with torch.inference_mode():
                        model(*inputs)
                    if device == "cuda":
                        torch.cuda.synchronize()

                rows.append(_row(name, batch_size, length, measure(run, **timing), echo))
    return rows


def machine(device: str, threads: int, openvino: bool = False) -> dict:
    """What the figures were measured on."""
    import onnxruntime as ort

    info = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "threads": threads,
        "device": device,
        "onnxruntime": ort.__version__,
        "providers": ort.get_available_providers(),
        "python": platform.python_version(),
        "distilbert_onnx": package_version("distilbert-onnx"),
    }
    if openvino:
        info[OPENVINO] = import_openvino().get_version()
    torch_version = package_version("torch")
    if torch_version:
        info["torch"] = torch_version
    return info


def format_table(result: dict) -> str:
    """The rows as an aligned text table."""
    header = f"{'variant':<14}{'batch':>6}{'seq':>6}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'seq/s':>11}"
    lines = [header, "-" * len(header)]
    for row in result["rows"]:
        lines.append(f"{row['variant']:<14}{row['batch_size']:>6}{row['sequence_length']:>6}{row['p50_ms']:>10.2f}"
                     f"{row['p90_ms']:>10.2f}{row['p99_ms']:>10.2f}{row['throughput']:>11.1f}")
    machine_info = result["machine"]
    versions = f"onnxruntime {machine_info['onnxruntime']}" + (f", openvino {machine_info[OPENVINO]}" if OPENVINO in machine_info else "")
    lines.append(f"{machine_info['cpu']}, {machine_info['threads']} threads, {machine_info['device']}, {versions}")
    openvino_precisions = {name: precision for name, precision in result.get("precisions", {}).items() if VARIANTS[name].backend == OPENVINO}
    if openvino_precisions:
        lines.append("OpenVINO ran in: " + ", ".join(f"{name} {precision}" for name, precision in openvino_precisions.items()))
    return "\n".join(lines)


def plot(result: dict, path: str | Path) -> None:
    """p50 latency against sequence length, one line per variant, one panel per batch size."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingExtraError("--plot needs matplotlib: pip install 'distilbert-onnx[plot]'") from None
    rows = result["rows"]
    batch_sizes = sorted({row["batch_size"] for row in rows})
    figure, axes = plt.subplots(1, len(batch_sizes), figsize=(5 * len(batch_sizes), 4), squeeze=False)
    for axis, batch_size in zip(axes[0], batch_sizes):
        for variant in dict.fromkeys(row["variant"] for row in rows):
            points = sorted((row["sequence_length"], row["p50_ms"]) for row in rows
                            if row["variant"] == variant and row["batch_size"] == batch_size)
            axis.plot(*zip(*points), marker="o", label=variant)
        axis.set(title=f"batch size {batch_size}", xlabel="sequence length (tokens)", ylabel="p50 latency (ms)")
        axis.grid(alpha=0.3)
        axis.legend()
    machine_info = result["machine"]
    figure.suptitle(f"{machine_info['cpu']}, {machine_info['threads']} threads, {machine_info['device']}", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
