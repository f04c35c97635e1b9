// Times a transformers.js pipeline on a packaged folder, offline (for bench/js_latency.py).
//
//   node time_pipeline.mjs JOB.json
//
// JOB.json: {"models", "model", "task", "dtype", "texts": [...], "options": {...}, "warmup": N,
// "rounds": N}. Loads the pipeline once (its load time is reported), calls it on each text in turn
// `warmup` rounds untimed, then `rounds` rounds timed one call at a time; prints
// {"load_ms": ..., "call_ms": [...]} as JSON.
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { env, pipeline } from "@huggingface/transformers";

const job = JSON.parse(readFileSync(process.argv[2], "utf8"));
env.allowRemoteModels = false;
env.localModelPath = job.models.endsWith("/") ? job.models : `${job.models}/`;

const loadStarted = performance.now();
const run = await pipeline(job.task, job.model, { dtype: job.dtype, local_files_only: true });
const loadMs = performance.now() - loadStarted;
const callMs = [];
for (let round = 0; round < job.warmup + job.rounds; round++) {
  for (const text of job.texts) {
    const started = performance.now();
    await run(text, job.options);
    if (round >= job.warmup) callMs.push(performance.now() - started);
  }
}
console.log(JSON.stringify({ load_ms: loadMs, call_ms: callMs }));
