"""int8 and fused fp32 speed against PyTorch eager and Optimum's int8, measured in one process.

On a distilbert-base-sized classifier (random weights), at batch 1 and 8 of 128 tokens, with the
same inputs and the same number of threads for everyone:
  PyTorch eager fp32     transformers' DistilBertForSequenceClassification (its default SDPA attention)
  ours                   model.onnx, model_optimized.onnx, model_quantized.onnx of a default export,
                         and its OpenVINO variants (openvino: bf16 where the CPU allows; openvino-int8)
  Optimum int8           optimum-cli onnxruntime quantize --avx512_vnni on optimum-cli's own export
The default CPU variant is the one `load(folder)` picks on this machine (variant="auto").
Goals: int8 >= 6x PyTorch, int8 >= 1.15x Optimum int8, fused fp32 >= 2x PyTorch; the default CPU
variant >= 6x PyTorch and >= 1.5x our onnxruntime int8 (on a CPU with AMX).
"""

from __future__ import annotations

import argparse
import json
import os

# PyTorch's OpenMP threads otherwise keep spinning after each run and slow the onnxruntime sessions
# measured after them in this process; passive waiting leaves PyTorch's own speed unchanged.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import distilbert_onnx as dox  # noqa: E402
from common import WORK, base_classifier, ensure_exports, machine, table  # noqa: E402
from distilbert_onnx.manifest import read_manifest  # noqa: E402
from distilbert_onnx.runtime.backends import open_variant  # noqa: E402
from distilbert_onnx.runtime.session import OnnxModel  # noqa: E402
from distilbert_onnx.tasks import get_task  # noqa: E402
from distilbert_onnx.variants import VARIANTS  # noqa: E402
from distilbert_onnx.timing import measure, synthetic_feeds  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=6.0, help="timed seconds per model and batch size, over all rounds")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of fresh sessions")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    checkpoint = base_classifier()
    ours, optimum_int8 = ensure_exports(checkpoint)
    from transformers import AutoModelForSequenceClassification

    pytorch = AutoModelForSequenceClassification.from_pretrained(checkpoint).eval()
    graphs = {
        "ours fp32": ours / "model.onnx",
        "ours fused fp32": ours / "model_optimized.onnx",
        "ours int8": ours / "model_quantized.onnx",
        "Optimum int8": optimum_int8,
    }
    openvino = {"ours openvino": VARIANTS["openvino"], "ours openvino-int8": VARIANTS["openvino-int8"]}
    manifest = read_manifest(ours)
    default = dox.load(ours, threads=args.threads)
    default_name = {"fp32": "ours fp32", "optimized": "ours fused fp32", "quantized": "ours int8"}.get(default.variant, f"ours {default.variant}")
    precisions = {}
    spec = get_task("text-classification")
    samples: dict[tuple[str, int], list[float]] = {}
    # Rounds of fresh sessions, every model measured in each round in turn: one session that happens
    # to run slowly (it happens on this kind of VM) cannot decide a figure on its own.
    for _ in range(args.rounds):
        sessions = {name: OnnxModel(path, threads=args.threads) for name, path in graphs.items()}
        for name, variant in openvino.items():
            sessions[name] = open_variant(ours, variant, "cpu", args.threads, manifest)
            precisions[name] = sessions[name].precision
        for batch in (1, 8):
            feeds = synthetic_feeds(spec, 30522, batch, 128, seed=batch)
            inputs = {name: torch.from_numpy(value) for name, value in feeds.items()}

            def eager():
                with torch.inference_mode():
                    pytorch(**inputs)

            runs = {"PyTorch eager fp32": eager, **{name: (lambda s=s: s.run(feeds)) for name, s in sessions.items()}}
            for name, run in runs.items():
                seconds = measure(run, warmup=3, min_seconds=args.seconds / args.rounds)
                samples.setdefault((name, batch), []).append(float(np.median(seconds)) * 1000)
        del sessions
    p50 = {key: float(np.median(values)) for key, values in samples.items()}
    names = ["PyTorch eager fp32", *graphs, *openvino]
    print(table(f"p50 latency, 128 tokens, {args.threads} threads, median of {args.rounds} rounds ({machine()})", ["model", "batch 1 ms", "batch 8 ms"],
                [[name, f"{p50[(name, 1)]:.1f}", f"{p50[(name, 8)]:.1f}"] for name in names]))
    print()
    goals = [
        ("int8 speed-up over PyTorch eager fp32", "ours int8", "PyTorch eager fp32", 6.0),
        ("int8 speed-up over Optimum int8", "ours int8", "Optimum int8", 1.15),
        ("fused fp32 speed-up over PyTorch eager fp32", "ours fused fp32", "PyTorch eager fp32", 2.0),
        (f"default CPU variant ({default.variant}) over PyTorch eager fp32", default_name, "PyTorch eager fp32", 6.0),
        (f"default CPU variant ({default.variant}) over our onnxruntime int8", default_name, "ours int8", 1.5),
    ]
    rows = [[figure, f"{p50[(base, 1)] / p50[(ours_name, 1)]:.2f}x", f"{p50[(base, 8)] / p50[(ours_name, 8)]:.2f}x", f">= {goal}x"]
            for figure, ours_name, base, goal in goals]
    print(table("ratios (higher is better)", ["figure", "batch 1", "batch 8", "goal"], rows))
    manifest = json.loads((ours / "distilbert_onnx.json").read_text())["variants"]["quantized"]["quantization"]
    print(f"\nOpenVINO precisions: {', '.join(f'{name} {precision}' for name, precision in precisions.items())}; "
          f"default CPU variant: {default.variant} ({default.backend}, {default.precision})")
    print(f"\nour int8 graph: from {manifest['source_graph']}, {manifest['weights']}, "
          f"{len(manifest['kept_fp32'])} MatMul(s) kept in fp32; chosen because {manifest['why']}")
    (WORK / "int8_speed.json").write_text(json.dumps(
        {"machine": machine(), "threads": args.threads, "p50_ms": {f"{n} | batch {b}": v for (n, b), v in p50.items()}},
        indent=2))


if __name__ == "__main__":
    main()
