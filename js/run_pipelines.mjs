// Runs transformers.js pipelines on packaged folders, offline, and prints their results as JSON.
//
//   node run_pipelines.mjs JOB.json
//
// JOB.json: {"models": "/folder/of/packaged/models", "calls": [{"model": "name", "task": "fill-mask",
// "dtype": "fp32" | "q8", "args": [...]}, ...]}. Each call is `pipeline(task, model, {dtype})(...args)`
// with the folder models/name; one pipeline per (model, task, dtype) is loaded once. Prints one JSON
// array, a result per call in order; tensors become {"dims": [...], "data": nested lists}. Any error
// (a file missing or unreadable, a failed call) ends the process with status 1 and the message.
import { readFileSync } from "node:fs";
import { env, pipeline } from "@huggingface/transformers";

const job = JSON.parse(readFileSync(process.argv[2], "utf8"));
env.allowRemoteModels = false;
env.localModelPath = job.models.endsWith("/") ? job.models : `${job.models}/`;

const pipelines = new Map();
async function pipelineFor({ model, task, dtype }) {
  const key = JSON.stringify([model, task, dtype]);
  if (!pipelines.has(key)) {
    pipelines.set(key, await pipeline(task, model, { dtype, local_files_only: true }));
  }
  return pipelines.get(key);
}

function plain(value) {
  return value && typeof value.tolist === "function" ? { dims: value.dims, data: value.tolist() } : value;
}

try {
  const results = [];
  for (const call of job.calls) {
    const run = await pipelineFor(call);
    results.push(plain(await run(...call.args)));
  }
  process.stdout.write(JSON.stringify(results));
} catch (error) {
  process.stderr.write(`transformers.js failed: ${error?.stack ?? error}\n`);
  process.exit(1);
}
