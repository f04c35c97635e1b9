// Run a folder made by `distilbert-onnx package DIR OUT --for transformers.js` from Node, offline.
//
//   npm install                                  (once, in this folder)
//   node predict.mjs path/to/OUT "I love this!" "What a terrible day."
//   node predict.mjs path/to/OUT --dtype q8 "I love this!"     (the int8 graph; fp32 by default)
//   node predict.mjs path/to/qa-OUT "Where does Maria live?" "Maria lives in Paris."   (a question, then contexts)
//
// The task comes from the folder's manifest; each result is printed as one JSON line.
import { readFileSync } from "node:fs";
import path from "node:path";
import { env, pipeline } from "@huggingface/transformers";

const args = process.argv.slice(2);
const dtypeAt = args.indexOf("--dtype");
const dtype = dtypeAt >= 0 ? args.splice(dtypeAt, 2)[1] : "fp32";
const [folder, ...texts] = args;
if (!folder || texts.length === 0) {
  console.error("usage: node predict.mjs PACKAGED_FOLDER [--dtype fp32|q8] TEXT [TEXT ...]");
  process.exit(1);
}
const { task } = JSON.parse(readFileSync(path.join(folder, "distilbert_onnx.json"), "utf8"));

env.allowRemoteModels = false;                          // never download: the folder is all there is
env.localModelPath = path.resolve(folder, "..") + "/";
const run = await pipeline(task, path.basename(path.resolve(folder)), { dtype, local_files_only: true });

const question = task === "question-answering" ? texts.shift() : null;
for (const text of texts) {
  const options = task === "feature-extraction" ? { pooling: "mean", normalize: true } : {};
  const result = question === null ? await run(text, options) : await run(question, text);
  console.log(JSON.stringify(result.tolist ? result.tolist()[0] : result));
}
