"""Latency of a folder packaged for transformers.js, in Node, beside this project's Python pipeline
(onnxruntime in Python) on the same machine and texts, and the size a page downloads.

For fp32 and int8 (transformers.js dtype q8): one text per call, each text of the set in turn,
`--warmup` untimed rounds then `--rounds` timed ones; p50 / p90 per call on each side and the
ratio Node / Python (below 1: Node is faster). Both runtimes use their default thread count (all
cores). The download is what a page fetches for a dtype: its graph, config.json and the tokenizer
files. Default folder: all-MiniLM-L6-v2 exported as feature extraction (sentence vectors).

    python bench/js_latency.py [--folder EXPORTED] [--texts 64] [--rounds 5] [--warmup 1]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import distilbert_onnx as dox
from common import WORK, machine, real_texts, table
from js_common import OPTIONS, exported_folder, node, packaged

DTYPES = {"fp32": "fp32", "q8": "quantized"}
PAGE_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json")


def python_call_ms(folder, variant, texts, options, warmup, rounds) -> list[float]:
    pipe = dox.load(folder, variant=variant)
    timings = []
    for round_ in range(warmup + rounds):
        for text in texts:
            started = time.perf_counter()
            pipe(text, **options)
            if round_ >= warmup:
                timings.append((time.perf_counter() - started) * 1000)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", help="an exported folder (feature-extraction, text- or token-classification)")
    parser.add_argument("--texts", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args()
    folder = exported_folder(args.folder)
    out = packaged(folder)
    manifest = json.loads((out / "distilbert_onnx.json").read_text())
    if manifest["task"] not in OPTIONS:
        raise SystemExit(f"js_latency measures {', '.join(OPTIONS)}, not {manifest['task']}")
    js_options, py_options = OPTIONS[manifest["task"]]
    texts = real_texts(args.texts, max_words=100)
    rows, figures = [], {}
    for dtype, variant in DTYPES.items():
        if dtype not in manifest["package"]["dtypes"]:
            continue
        in_node = node("time_pipeline.mjs", {"models": str(out.parent), "model": out.name, "task": manifest["task"],
                                             "dtype": dtype, "texts": texts, "options": js_options,
                                             "warmup": args.warmup, "rounds": args.rounds})
        in_python = python_call_ms(folder, variant, texts, py_options, args.warmup, args.rounds)
        graph = out / manifest["variants"][variant]["file"]
        download = graph.stat().st_size + sum((out / name).stat().st_size for name in PAGE_FILES)
        node_p50, python_p50 = np.percentile(in_node["call_ms"], 50), np.percentile(in_python, 50)
        figures[dtype] = {"node_ms": in_node["call_ms"], "python_ms": in_python, "node_load_ms": in_node["load_ms"],
                          "download_bytes": download}
        rows.append([dtype, f"{node_p50:.2f}", f"{np.percentile(in_node['call_ms'], 90):.2f}", f"{python_p50:.2f}",
                     f"{np.percentile(in_python, 90):.2f}", f"{node_p50 / python_p50:.2f}x",
                     f"{in_node['load_ms']:.0f}", f"{download / 1e6:.1f}"])
    print(table(f"{folder.name} ({manifest['task']}), {len(texts)} real texts x {args.rounds} rounds, one text per call ({machine()})",
                ["dtype", "Node p50 ms", "Node p90 ms", "Python p50 ms", "Python p90 ms", "Node / Python",
                 "Node load ms", "page download MB"], rows))
    (WORK / "js_latency.json").write_text(json.dumps({"machine": machine(), "rows": rows, "figures": figures}))


if __name__ == "__main__":
    main()
