"""The runtime against Optimum's ORTModelForSequenceClassification + transformers pipeline.

On a distilbert-base-sized classifier (random weights), on the CPU. Ours: `load(folder)` (variant
auto: the fastest variant that meets the fidelity target on this machine, OpenVINO variants included)
and `load(folder, variant="quantized")` (our onnxruntime int8); Optimum: optimum-cli onnxruntime
quantize --avx512_vnni on its own export.
  cold start    a new Python process until its first prediction is printed (median of --repeat); ours
                with the per-user cache warm (the choice and OpenVINO's compiled model cached) and
                empty (the first load ever on this machine: the choice measured, the model compiled)
  throughput    --texts real English texts of 1 to 300 words, batch 32, texts per second
  overhead      batch 1, 128 tokens: our tokenization and post-processing against the model's run
Goals: cold start <= 0.25x Optimum's, throughput >= 2.5x Optimum's, overhead < 10% of the model;
auto >= 1.4x our onnxruntime int8 over the texts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

import distilbert_onnx as dox
from common import WORK, base_classifier, ensure_exports, ensure_ours, machine, optimum_python, real_texts, table
from distilbert_onnx.timing import measure

OURS_COLD = """
import distilbert_onnx as dox
print(dox.load({folder!r}, variant={variant!r})("I love this!"))
"""
OPTIMUM_COLD = """
from optimum.onnxruntime import ORTModelForSequenceClassification
from transformers import AutoTokenizer, pipeline
model = ORTModelForSequenceClassification.from_pretrained({folder!r}, file_name="model_quantized.onnx")
print(pipeline("text-classification", model=model, tokenizer=AutoTokenizer.from_pretrained({folder!r}))("I love this!"))
"""
OPTIMUM_THROUGHPUT = """
import json, time
from optimum.onnxruntime import ORTModelForSequenceClassification
from transformers import AutoTokenizer, pipeline
texts = json.load(open({texts!r}))
model = ORTModelForSequenceClassification.from_pretrained({folder!r}, file_name="model_quantized.onnx")
pipe = pipeline("text-classification", model=model, tokenizer=AutoTokenizer.from_pretrained({folder!r}))
pipe(texts[:64], batch_size=32, truncation=True)
started = time.perf_counter()
results = pipe(texts, batch_size=32, truncation=True)
print(json.dumps({{"seconds": time.perf_counter() - started, "count": len(results)}}))
"""


def cold_start(python: str, script: str, repeat: int, cache: str | None = None) -> float:
    """Median seconds of `script` in a new process; `cache` is our per-user cache folder ("fresh": a new
    empty one each time)."""
    times = []
    for _ in range(repeat):
        env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
        if os.environ.get("PYTHONPATH"):  # ours from a source tree rather than the installed package
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        with tempfile.TemporaryDirectory() as empty:
            if cache:
                env["DISTILBERT_ONNX_CACHE"] = empty if cache == "fresh" else cache
            started = time.perf_counter()
            subprocess.run([python, "-c", script], check=True, capture_output=True, env=env)
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def overhead(folder) -> tuple[float, float, float]:
    """(tokenize ms, model ms, post-process ms) for one text of 128 tokens at batch 1."""
    pipe = dox.load(folder)
    words = ["word"] * 200
    text = " ".join(words)
    while len(pipe.context.tokenizer.encode([text])[0].ids) > 128:
        words.pop()
        text = " ".join(words)
    handler, options = pipe.handler, pipe._options({})
    rows = handler.encode([text], pipe.context, options)
    outputs = pipe._run_rows(rows[0])
    tokenize = np.median(measure(lambda: handler.encode([text], pipe.context, options), min_seconds=1))
    model = np.median(measure(lambda: pipe._run_rows(rows[0]), min_seconds=3))
    post = np.median(measure(lambda: handler.decode(text, rows[0], outputs, pipe.context, options), min_seconds=1))
    return tokenize * 1000, model * 1000, post * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", choices=["cold-start"],
                        help="cold-start: only our load() cold starts (no Optimum): to compare two source trees, "
                             "run it with PYTHONPATH=TREE/src for each")
    args = parser.parse_args()
    if args.only == "cold-start":
        ours = ensure_ours(base_classifier())
        warm_cache = str(WORK / "user-cache")
        for variant in ("auto", "quantized"):
            script = OURS_COLD.format(folder=str(ours), variant=variant)
            cold_start(sys.executable, script, 1, warm_cache)  # fills the warm cache (choice, verified sha256)
            print(f"cold start, {variant}, warm cache ({os.environ.get('PYTHONPATH', 'installed')}): "
                  f"{cold_start(sys.executable, script, args.repeat, warm_cache):.3f} s; first load on this machine: "
                  f"{cold_start(sys.executable, script, args.repeat, 'fresh'):.3f} s")
        return
    ours, optimum_model = ensure_exports(base_classifier())
    optimum_folder = str(optimum_model.parent)
    python = str(optimum_python())

    warm_cache = str(WORK / "user-cache")
    auto_script = OURS_COLD.format(folder=str(ours), variant="auto")
    cold_start(sys.executable, auto_script, 1, warm_cache)  # fills the warm cache
    cold = {
        "auto, warm cache": cold_start(sys.executable, auto_script, args.repeat, warm_cache),
        "auto, first load on this machine": cold_start(sys.executable, auto_script, args.repeat, "fresh"),
        "onnxruntime int8": cold_start(sys.executable, OURS_COLD.format(folder=str(ours), variant="quantized"), args.repeat, warm_cache),
    }
    optimum_cold = cold_start(python, OPTIMUM_COLD.format(folder=optimum_folder), args.repeat)

    texts = real_texts(args.texts)
    texts_file = WORK / "throughput_texts.json"
    texts_file.write_text(json.dumps(texts))
    seconds = {}
    for variant in ("auto", "quantized"):
        pipe = dox.load(ours, variant=variant)
        pipe(texts[:64], batch_size=32)
        started = time.perf_counter()
        pipe(texts, batch_size=32)
        seconds[variant] = time.perf_counter() - started
        if variant == "auto":
            auto_variant = f"{pipe.variant}, {pipe.backend}, {pipe.precision}"
    run = subprocess.run([python, "-c", OPTIMUM_THROUGHPUT.format(texts=str(texts_file), folder=optimum_folder)],
                         check=True, capture_output=True, text=True, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    optimum_seconds = json.loads(run.stdout.strip().splitlines()[-1])["seconds"]
    tokenize, model, post = overhead(ours)

    words = [len(text.split()) for text in texts]
    print(table(f"runtime vs Optimum on the CPU; auto ran {auto_variant} ({machine()})", ["measure", "ours", "Optimum", "ratio", "goal"], [
        *[[f"cold start, {name} (s)", f"{value:.2f}", f"{optimum_cold:.2f}", f"{value / optimum_cold:.2f}", "<= 0.25"]
          for name, value in cold.items()],
        *[[f"throughput, {name} ({len(texts)} texts, {min(words)}-{max(words)} words, batch 32; texts/s)",
           f"{len(texts) / seconds[variant]:.1f}", f"{len(texts) / optimum_seconds:.1f}",
           f"{optimum_seconds / seconds[variant]:.2f}", ">= 2.5"] for name, variant in (("auto", "auto"), ("onnxruntime int8", "quantized"))],
        ["throughput, auto over onnxruntime int8", "", "", f"{seconds['quantized'] / seconds['auto']:.2f}", ">= 1.4"],
    ]))
    print()
    print(table("our overhead at batch 1, 128 tokens", ["tokenize ms", "model ms", "post-process ms", "share of model", "goal"],
                [[f"{tokenize:.3f}", f"{model:.2f}", f"{post:.3f}", f"{(tokenize + post) / model:.1%}", "< 10%"]]))
    (WORK / "runtime_vs_optimum.json").write_text(json.dumps({
        "machine": machine(), "auto": auto_variant, "cold_start_s": {**cold, "optimum": optimum_cold},
        "throughput_s": {**seconds, "optimum": optimum_seconds, "texts": len(texts)},
        "overhead_ms": {"tokenize": tokenize, "model": model, "post_process": post}}, indent=2))


if __name__ == "__main__":
    main()
