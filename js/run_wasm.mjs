// Runs an ONNX graph on onnxruntime-web's WASM backend in Node (the browser's kernels, without the
// browser), one input at a time, for bench/js_fidelity.py.
//
//   node run_wasm.mjs JOB.json
//
// JOB.json: {"graph": "path/to/model.onnx", "inputs": [[token ids], ...]}. Prints a JSON array: per
// input, the first output averaged over its tokens (a mean-pooled sentence vector, every token real).
import { readFileSync } from "node:fs";
import * as ort from "onnxruntime-web";

const job = JSON.parse(readFileSync(process.argv[2], "utf8"));
const session = await ort.InferenceSession.create(new Uint8Array(readFileSync(job.graph)));
const vectors = [];
for (const ids of job.inputs) {
  const tokens = BigInt64Array.from(ids.map(BigInt));
  const outputs = await session.run({
    input_ids: new ort.Tensor("int64", tokens, [1, ids.length]),
    attention_mask: new ort.Tensor("int64", tokens.map(() => 1n), [1, ids.length]),
  });
  const hidden = outputs[session.outputNames[0]];
  const dim = hidden.dims[2];
  const mean = new Array(dim).fill(0);
  hidden.data.forEach((value, index) => { mean[index % dim] += value / ids.length; });
  vectors.push(mean);
}
console.log(JSON.stringify(vectors));
