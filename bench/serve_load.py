"""`distilbert-onnx serve` under load: throughput and latency of single-text requests over HTTP.

On the distilbert-base-sized classifier (random weights), int8 on the CPU, with --texts real English
texts of 1 to 300 words. Every level sends exactly those texts, one per request, from N concurrent
clients (httpx.AsyncClient, keep-alive, in this process: the load generator shares the machine's
cores with the server) and measures, side by side in one run:
  offline        pipe(texts, batch_size=32) in this process: texts per second
  direct         pipe(text) one text at a time in this process: p50 latency
  serve          distilbert-onnx serve (defaults) at 1, 8, 64 and 256 clients
  no batching    the same server with --max-batch-tokens 1 (one row per model call)
  Optimum        a plain FastAPI endpoint calling ORTModelForSequenceClassification + transformers'
                 pipeline per request (Optimum's own int8 export, in the Optimum environment)
  --compare      other serve settings, at 64 clients
Goals at 64 clients: serve >= 0.75x offline, >= 4x no batching, >= 4x Optimum; at 1 client: serve
p50 <= direct p50 + 3 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

import distilbert_onnx as dox
from common import (WORK, base_classifier, ensure_exports, ensure_ours, machine, optimum_python, real_texts,
                    source_env, table)

OPTIMUM_APP = """
import os
from fastapi import FastAPI
from pydantic import BaseModel
from optimum.onnxruntime import ORTModelForSequenceClassification
from transformers import AutoTokenizer, pipeline

folder = os.environ["MODEL_FOLDER"]
model = ORTModelForSequenceClassification.from_pretrained(folder, file_name="model_quantized.onnx")
classifier = pipeline("text-classification", model=model, tokenizer=AutoTokenizer.from_pretrained(folder))
app = FastAPI()


class Body(BaseModel):
    inputs: str


@app.post("/predict")
def predict(body: Body):
    return classifier(body.inputs, truncation=True)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_ours(folder: Path, *options: str) -> tuple[subprocess.Popen, str]:
    log = WORK / "serve_load_server.log"
    process = subprocess.Popen([sys.executable, "-m", "distilbert_onnx.cli", "serve", str(folder), "--port", "0", *options],
                               stderr=open(log, "w"), env=source_env())
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if match := re.search(r"listening on (http://\S+)", log.read_text()):
            return process, match.group(1)
        time.sleep(0.1)
    sys.exit(f"the server did not start: see {log}")


def start_optimum(folder: Path) -> tuple[subprocess.Popen, str]:
    (WORK / "optimum_app.py").write_text(OPTIMUM_APP)
    port = free_port()
    process = subprocess.Popen([str(optimum_python()), "-m", "uvicorn", "optimum_app:app", "--port", str(port),
                                "--log-level", "warning"], cwd=WORK, env={"MODEL_FOLDER": str(folder), "HF_HUB_OFFLINE": "1",
                                "PATH": "/usr/bin:/bin"}, stderr=open(WORK / "serve_load_optimum.log", "w"))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            httpx.post(f"{url}/predict", json={"inputs": "warm up"}, timeout=30).raise_for_status()
            return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    sys.exit("the Optimum app did not start: see results/serve_load_optimum.log")


async def load(url: str, texts: list[str], clients: int) -> dict:
    """Every text once, one per request, from `clients` concurrent keep-alive clients."""
    queue = iter(texts)
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:

        async def one_client():
            for text in queue:
                started = time.perf_counter()
                response = await client.post(f"{url}/predict", json={"inputs": text})
                latencies.append(time.perf_counter() - started)
                response.raise_for_status()

        warm = iter(texts[: 2 * clients])
        await asyncio.gather(*(client.post(f"{url}/predict", json={"inputs": text}) for text in warm))
        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        seconds = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {"clients": clients, "requests": len(latencies), "seconds": seconds, "throughput": len(latencies) / seconds,
            "p50_ms": float(np.percentile(ms, 50)), "p90_ms": float(np.percentile(ms, 90)), "p99_ms": float(np.percentile(ms, 99))}


def measure_server(start, levels: list[int], texts: list[str]) -> list[dict]:
    process, url = start()
    try:
        rows = []
        for clients in levels:
            rows.append(asyncio.run(load(url, texts, clients)))
            print(f"  {clients:>3} clients: {rows[-1]['throughput']:.1f} requests/s, p50 {rows[-1]['p50_ms']:.1f} ms", flush=True)
        return rows
    finally:
        process.terminate()
        process.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=400, help="texts sent at each level (and run offline)")
    parser.add_argument("--levels", default="1,8,64,256")
    parser.add_argument("--compare", action="append", default=None,
                        help='serve options to measure at 64 clients too, e.g. "--max-wait-ms 0" (repeat)')
    parser.add_argument("--ours-only", action="store_true",
                        help="only `serve` with its defaults at --levels (no Optimum, no other options): to compare "
                             "two source trees, run it with PYTHONPATH=TREE/src for each")
    args = parser.parse_args()
    levels = [int(level) for level in args.levels.split(",")]
    if args.ours_only:
        ours = ensure_ours(base_classifier())
        texts = real_texts(args.texts)
        for row in measure_server(lambda: start_ours(ours), levels, texts):
            print(f"serve ({source_env()['PYTHONPATH']}): {row['clients']} clients, {row['throughput']:.1f} requests/s, "
                  f"p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms")
        return
    ours, optimum_model = ensure_exports(base_classifier())
    texts = real_texts(args.texts)
    load_before = os.getloadavg()

    pipe = dox.load(ours)
    pipe(texts[:64], batch_size=32)
    started = time.perf_counter()
    pipe(texts, batch_size=32)
    offline = len(texts) / (time.perf_counter() - started)
    direct = []
    for text in texts:
        started = time.perf_counter()
        pipe(text)
        direct.append(time.perf_counter() - started)
    direct_p50 = statistics.median(direct) * 1000
    del pipe
    print(f"offline: {offline:.1f} texts/s; direct pipe(text) p50 {direct_p50:.1f} ms", flush=True)

    print("serve (defaults)", flush=True)
    served = measure_server(lambda: start_ours(ours), levels, texts)
    print("serve --max-batch-tokens 1 (no batching)", flush=True)
    unbatched = measure_server(lambda: start_ours(ours, "--max-batch-tokens", "1"), [1, 64], texts)
    print("FastAPI + Optimum pipeline per request", flush=True)
    optimum = measure_server(lambda: start_optimum(optimum_model.parent), [1, 64], texts)
    compared = {}
    for options in args.compare or ["--min-batch-fill 0", "--min-batch-fill 0.5", "--max-batch-tokens 4096", "--max-wait-ms 0"]:
        print(f"serve {options}", flush=True)
        compared[f"serve {options}"] = measure_server(lambda: start_ours(ours, *options.split()), [64], texts)

    at = {row["clients"]: row for row in served}
    words = [len(text.split()) for text in texts]
    header = ["server", "clients", "requests/s", "p50 ms", "p90 ms", "p99 ms"]
    rows = [[name, row["clients"], f"{row['throughput']:.1f}", f"{row['p50_ms']:.1f}", f"{row['p90_ms']:.1f}", f"{row['p99_ms']:.1f}"]
            for name, measured in (("serve", served), ("serve, no batching", unbatched), ("FastAPI + Optimum", optimum),
                                   *compared.items())
            for row in measured]
    print()
    print(table(f"single-text requests, {len(texts)} real texts of {min(words)}-{max(words)} words per level ({machine()})",
                header, rows))
    if 64 in at:
        print()
        print(table("goals", ["measure", "value", "goal"], [
            ["serve at 64 clients / offline pipe(texts, batch_size=32)", f"{at[64]['throughput'] / offline:.2f}x", ">= 0.75x"],
            ["serve at 64 / no batching at 64", f"{at[64]['throughput'] / unbatched[1]['throughput']:.2f}x", ">= 4x"],
            ["serve at 64 / FastAPI + Optimum at 64", f"{at[64]['throughput'] / optimum[1]['throughput']:.2f}x", ">= 4x"],
            ["serve p50 at 1 client - direct pipe(text) p50", f"{at[1]['p50_ms'] - direct_p50:+.1f} ms" if 1 in at else "-", "<= +3 ms"],
        ]))
    print(f"\noffline {offline:.1f} texts/s, direct p50 {direct_p50:.1f} ms; load average before: "
          + ", ".join(f"{value:.2f}" for value in load_before) + ", after: " + ", ".join(f"{value:.2f}" for value in os.getloadavg()))
    (WORK / "serve_load.json").write_text(json.dumps({
        "machine": machine(), "texts": len(texts), "offline_texts_per_s": offline, "direct_p50_ms": direct_p50,
        "serve": served, "no_batching": unbatched, "optimum_fastapi": optimum, "compared": compared,
        "load_average_before": load_before, "load_average_after": os.getloadavg()}, indent=2))


if __name__ == "__main__":
    main()
