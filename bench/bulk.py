"""Bulk inference: the local engine and the Ray engine against the pipeline on texts held in memory,
peak memory as the table grows, and a job killed half-way then resumed.

    python bench/bulk.py [--rows 4000] [--flat-rows 20000,200000] [--resume-rows 20000]

Every measurement runs in its own process, one after the other:
  throughput  distilbert-base-sized classifier, int8, real English texts cut to 48 words (about 64
              tokens): `pipe(texts, batch_size=32)` on 2 threads with the texts in memory, the local
              engine (`predict --input in.parquet --output out.parquet`, 2 threads), and the Ray engine
              with 1 and 2 workers of 1 thread. Rates are the jobs' own (rows / seconds from the first
              row read to the output renamed; Ray's include starting the actors and loading their models).
  memory      peak RSS (/usr/bin/time) of the local engine at each --flat-rows count against a
              process that loads the model, reads the largest table's text column and scores 2,000; a
              small classifier (dim 64, 2 layers, the BERT vocabulary) so 200,000 rows take minutes.
  resume      the small classifier on --resume-rows rows, killed once half the parts exist, resumed,
              and compared with an unbroken run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import common

sys.path.insert(0, str(common.BENCH.parent / "src"))
RESULTS = common.WORK / "bulk"
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([common.source_path(), str(common.BENCH)])}
CLI = [sys.executable, "-m", "distilbert_onnx.cli"]
MAX_WORDS = 48


def texts(count: int) -> list[str]:
    """`count` real texts: the corpus's 3,720 in a fixed order, repeated with a row number when more are asked."""
    pool = common.real_texts(3720, max_words=MAX_WORDS)
    return [pool[i % len(pool)] + ("" if i < len(pool) else f" ({i // len(pool)})") for i in range(count)]


def table(path: Path, count: int) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.exists():
        rows = texts(count)
        pq.write_table(pa.table({"id": list(range(count)), "text": rows}), path, row_group_size=10_000)
    return path


def export(checkpoint: Path, folder: Path) -> Path:
    if not (folder / "model_quantized.onnx").exists():
        import distilbert_onnx as dox

        dox.export(checkpoint, folder, force=True)
    return folder


def small_classifier(folder: Path = common.WORK / "distilbert-small-sst-64") -> Path:
    if not (folder / "model.safetensors").exists():
        from tokenizers.implementations import BertWordPieceTokenizer

        from distilbert_onnx.exporting.demo import make_checkpoint

        tokenizer = BertWordPieceTokenizer.from_file(str(common.bert_vocabulary()), lowercase=True)
        make_checkpoint(folder, "text-classification", dim=64, n_layers=2, n_heads=2, hidden_dim=256,
                        tokenizer=tokenizer, labels=["NEGATIVE", "POSITIVE"])
    return folder


def timed(command: list[str]) -> dict:
    """Run `command` under /usr/bin/time -v: its stderr, wall seconds, peak RSS (MB) and the job's own rate."""
    started = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True, env=ENV)
    wall = time.perf_counter() - started
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1)) // 1024
    job = re.search(r"([\d,]+) rows in ([\d.]+) s", done.stderr)
    rate = int(job.group(1).replace(",", "")) / float(job.group(2)) if job else None
    if rate is None:
        reported = re.search(r"RATE ([\d.]+)", done.stdout)
        rate = float(reported.group(1)) if reported else None
    return {"wall_s": round(wall, 1), "peak_mb": peak, "rows_per_s": round(rate, 1) if rate else None}


IN_MEMORY = """
import sys, time, pyarrow.parquet as pq
import distilbert_onnx as dox
texts = pq.read_table(sys.argv[2], columns=["text"]).column("text").to_pylist()[: int(sys.argv[3])]
pipe = dox.load(sys.argv[1], threads=2)
pipe(texts[:64], batch_size=32)
start = time.perf_counter()
results = pipe(texts, batch_size=32)
print("RATE", len(texts) / (time.perf_counter() - start))
"""


def in_memory(folder: Path, source: Path, count: int) -> dict:
    return timed([sys.executable, "-c", IN_MEMORY, str(folder), str(source), str(count)])


def bulk(folder: Path, source: Path, target: Path, *arguments) -> dict:
    return timed([*CLI, "predict", str(folder), "--input", str(source), "--output", str(target), "--force",
                  "--id-column", "id", *map(str, arguments)])


def throughput(rows: int) -> list[list]:
    folder = export(common.base_classifier(), common.WORK / "distilbert-base-sst-onnx")
    source = table(RESULTS / f"texts-{rows}.parquet", rows)
    runs = [
        ("pipe(texts, batch_size=32), 2 threads, in memory", in_memory(folder, source, rows)),
        ("local engine, 2 threads", bulk(folder, source, RESULTS / "local.parquet", "--threads", 2)),
        ("Ray engine, 1 worker x 1 thread", bulk(folder, source, RESULTS / "ray1.parquet", "--engine", "ray",
                                                 "--workers", 1, "--threads-per-worker", 1)),
        ("Ray engine, 2 workers x 1 thread", bulk(folder, source, RESULTS / "ray2.parquet", "--engine", "ray",
                                                  "--workers", 2, "--threads-per-worker", 1)),
    ]
    memory, local = runs[0][1]["rows_per_s"], runs[1][1]["rows_per_s"]
    ray1 = runs[2][1]["rows_per_s"]
    return [[name, result["rows_per_s"], f"{result['rows_per_s'] / memory:.2f}", f"{result['rows_per_s'] / local:.2f}",
             f"{result['rows_per_s'] / ray1:.2f}" if "Ray" in name else "", result["wall_s"], result["peak_mb"]]
            for name, result in runs]


def flatness(counts: list[int]) -> list[list]:
    folder = export(small_classifier(), common.WORK / "distilbert-small-sst-64-onnx")
    rows = []
    footprint = in_memory(folder, table(RESULTS / f"texts-{max(counts)}.parquet", max(counts)), 2000)
    rows.append([f"pipe in memory: {max(counts):,} texts read, 2,000 scored", 2000, footprint["peak_mb"], "",
                 footprint["rows_per_s"]])
    for count in counts:
        source = table(RESULTS / f"texts-{count}.parquet", count)
        result = bulk(folder, source, RESULTS / f"flat-{count}.parquet", "--threads", 2)
        rows.append([f"local engine, {count:,} rows", count, result["peak_mb"],
                     result["peak_mb"] - footprint["peak_mb"], result["rows_per_s"]])
    return rows


def resume(count: int) -> list[list]:
    import pyarrow.parquet as pq

    folder = export(small_classifier(), common.WORK / "distilbert-small-sst-64-onnx")
    source = table(RESULTS / f"texts-{count}.parquet", count)
    target, unbroken = RESULTS / "resumed.parquet", RESULTS / "unbroken.parquet"
    staging = target.parent / f".{target.name}.partial"
    target.unlink(missing_ok=True)
    arguments = ["--id-column", "id", "--part-rows", 1000, "--threads", 2, "--variant", "fp32"]
    command = [*CLI, "predict", str(folder), "--input", str(source), "--output", str(target), *map(str, arguments)]
    job = subprocess.Popen(command, env=ENV, stderr=subprocess.DEVNULL)
    while len(list(staging.glob("part-*.parquet"))) < count // 2000 and job.poll() is None:
        time.sleep(0.01)
    job.send_signal(signal.SIGKILL)
    job.wait()
    killed_at = len(list(staging.glob("part-*.parquet")))
    done = subprocess.run([*command, "--resume"], env=ENV, capture_output=True, text=True, check=True)
    subprocess.run([*CLI, "predict", str(folder), "--input", str(source), "--output", str(unbroken), "--force",
                    *map(str, arguments)], env=ENV, capture_output=True, check=True)
    got, want = pq.read_table(target), pq.read_table(unbroken)
    ids = got.column("id").to_pylist()
    same_labels = got.column("label").to_pylist() == want.column("label").to_pylist()
    worst = max(abs(a - b) for a, b in zip(got.column("score").to_pylist(), want.column("score").to_pylist()))
    resumed_line = re.search(r"[\d,]+ rows in [\d.]+ s \(after [^)]*\)", done.stderr).group(0)
    return [[count, f"{killed_at} of {count // 1000}", resumed_line, got.num_rows, ids == list(range(count)),
             same_labels, f"{worst:.1e}"]]


DRIVER = """
import json, sys, time
from pathlib import Path
from distilbert_onnx.bulk import local
from distilbert_onnx.bulk.columns import ColumnMap
from distilbert_onnx.bulk.ray_engine import decode
from distilbert_onnx.tasks import get_task
count, target = int(sys.argv[1]), Path(sys.argv[2])
columns = ColumnMap.for_task(get_task("text-classification"), {}, id_column="id")
source = target.with_name("driver-in.jsonl")
source.write_text("".join(json.dumps({"id": i, "text": "x"}) + "\\n" for i in range(count)))
job = local.plan_job(source, target, columns, options={}, model={})
local.parts.start(job.output, resume=False, force=True)
encoded = [json.dumps({"result": {"label": "POSITIVE", "score": 0.987654321}})] * 512
def chunks():
    for start in range(0, count, 512):
        yield {"id": list(range(start, start + 512))}, [decode(text) for text in encoded]
began = time.perf_counter()
local.write_parts(job, chunks(), 0, {})
print("RATE", count / (time.perf_counter() - began))
"""


def driver(count: int) -> list[list]:
    """The Ray driver's own work per row (decode the actors' outcomes, write parts, concatenate),
    with no model: the ceiling on a cluster's rows/s for a label-and-score task."""
    target = RESULTS / "driver.parquet"
    target.unlink(missing_ok=True)
    result = timed([sys.executable, "-c", DRIVER, str(count), str(target)])
    return [[f"{count:,}", result["rows_per_s"], result["peak_mb"]]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--flat-rows", default="20000,200000")
    parser.add_argument("--resume-rows", type=int, default=20000)
    parser.add_argument("--only", choices=["throughput", "memory", "resume", "driver"])
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    print(common.machine(), f"load {os.getloadavg()[0]:.1f}")
    if args.only in (None, "throughput"):
        print(common.table(f"throughput, {args.rows:,} rows, distilbert-base-sized int8, texts of <= {MAX_WORDS} words",
                           ["run", "rows/s", "x in memory", "x local", "x Ray 1 worker", "wall s", "peak MB"],
                           throughput(args.rows)))
    if args.only in (None, "memory"):
        counts = [int(count) for count in args.flat_rows.split(",")]
        print(common.table("peak RSS of the local engine, small classifier (dim 64, 2 layers), int8",
                           ["run", "rows", "peak MB", "above the in-memory run", "rows/s"], flatness(counts)))
    if args.only in (None, "resume"):
        print(common.table("killed half-way, then --resume (small classifier, fp32, parts of 1,000 rows)",
                           ["rows", "parts when killed", "resumed run", "output rows", "ids in order",
                            "labels = unbroken", "max score diff"], resume(args.resume_rows)))
    if args.only in (None, "driver"):
        print(common.table("the Ray driver's ceiling: outcomes decoded and written, no model",
                           ["rows", "rows/s", "peak MB"], driver(200_000)))
    print(f"load {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
