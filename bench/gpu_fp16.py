"""The CUDA path end to end: fp16 export, validation on the GPU, and fused fp16 against PyTorch fp16.

Needs an NVIDIA GPU with onnxruntime-gpu and a CUDA build of torch. On a distilbert-base-sized
classifier (random weights): export with --fp16, `validate` (which checks the fp16 graph on CUDA
against model.onnx), then at batch 1 and 64 of 128 tokens the fused fp16 graph (IO binding) against
PyTorch fp16 eager with scaled-dot-product attention, measured in one process.
Goals: fused fp16 >= 2x PyTorch fp16 at batch 1, >= 1.3x at batch 64.
"""

from __future__ import annotations

import json

import distilbert_onnx as dox
from common import WORK, base_classifier, table
from distilbert_onnx.benchmark import benchmark_folder, format_table


def main() -> None:
    checkpoint = base_classifier()
    folder = WORK / "ours-fp16"
    dox.export(checkpoint, folder, fp16=True, quantize=False, force=True, echo=print)
    for line in dox.validate(folder):
        print(line)
    result = benchmark_folder(folder, variants=["fp16", "optimized"], batch_sizes=(1, 64), sequence_lengths=(128,),
                              device="cuda", compare_torch=checkpoint, min_seconds=5.0, echo=print)
    print(format_table(result))
    p50 = {(row["variant"], row["batch_size"]): row["p50_ms"] for row in result["rows"]}
    print(table("fused fp16 speed-up over PyTorch fp16 eager (SDPA)", ["batch", "ratio", "goal"], [
        ["1", f"{p50[('torch-fp16', 1)] / p50[('fp16', 1)]:.2f}x", ">= 2x"],
        ["64", f"{p50[('torch-fp16', 64)] / p50[('fp16', 64)]:.2f}x", ">= 1.3x"],
    ]))
    (WORK / "gpu_fp16.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
