"""Packaged folders in Node: transformers.js (onnxruntime-node) runs every task it has a pipeline for,
fp32 and int8, in one Node process, and answers as this project's Python pipeline does on the same
inputs. onnxruntime-web's WASM backend runs each packaged graph in Node too (the operators the
package step allows are there)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import distilbert_onnx as dox
from distilbert_onnx.checks.fidelity import Batch, fidelity, scores_function
from distilbert_onnx.config import load_config
from distilbert_onnx.manifest import meets, read_manifest
from distilbert_onnx.tasks import get_task
from js_helpers import (CALLS, DTYPE_VARIANTS, JS_DIR, REPO, TEXTS, TOLERANCE, assert_same, missing_node, package_all,
                        python_answer, require, run_node)


@pytest.fixture(scope="module")
def packaged(exported, tmp_path_factory):
    return package_all(exported, tmp_path_factory.mktemp("transformersjs"))


def test_node_answers_as_the_python_pipeline_for_every_task_fp32_and_int8(packaged, exported, tmp_path):
    require("the Node check", missing_node())
    plan = [(task, dtype, call) for task, calls in CALLS.items() for dtype in DTYPE_VARIANTS for call in calls]
    answers = run_node(packaged, [{"model": task, "task": task, "dtype": dtype, "args": call["js"]}
                                  for task, dtype, call in plan], tmp_path)
    pipes = {}
    for (task, dtype, call), answer in zip(plan, answers, strict=True):
        if (task, dtype) not in pipes:
            pipes[task, dtype] = dox.load(exported[task], variant=DTYPE_VARIANTS[dtype])
        expected = python_answer(pipes[task, dtype], call)
        assert_same(answer, expected, TOLERANCE["node", dtype], f"{task} {dtype} {json.dumps(call['js'])[:60]}")


def test_onnxruntime_web_runs_every_packaged_graph_in_node(packaged, tmp_path):
    """The WASM backend itself, without the browser: each packaged graph loads and runs on it. fp32
    gives onnxruntime-node's outputs; int8 (WASM's int8 kernels round otherwise than the x86 ones)
    meets the folder's fidelity target against fp32, measured as export measures it (per head)."""
    require("the Node check", missing_node())
    script = """
import * as web from "onnxruntime-web";
import * as node from "onnxruntime-node";
import { readFileSync } from "node:fs";
const out = {};
for (const path of JSON.parse(process.argv[1])) {
  const bytes = new Uint8Array(readFileSync(path));
  out[path] = [];
  for (const ort of [web, node]) {
    const session = await ort.InferenceSession.create(bytes);
    const ids = BigInt64Array.from([2n, 40n, 41n, 42n, 43n, 44n, 45n, 3n]);
    const feeds = { input_ids: new ort.Tensor("int64", ids, [1, 8]),
                    attention_mask: new ort.Tensor("int64", ids.map(() => 1n), [1, 8]) };
    const outputs = await session.run(feeds);
    out[path].push(Object.fromEntries(session.outputNames.map(
      (name) => [name, { dims: outputs[name].dims, data: Array.from(outputs[name].data) }])));
  }
}
console.log(JSON.stringify(out));
"""
    graphs = sorted(str(path) for path in packaged.glob("*/onnx/*.onnx"))
    assert len(graphs) == 2 * len(CALLS)
    done = subprocess.run(["node", "--input-type=module", "-e", script, json.dumps(graphs)], capture_output=True,
                          text=True, timeout=300, cwd=JS_DIR)
    assert done.returncode == 0, done.stderr[-3000:]
    outputs = {path: [{name: np.array(value["data"]).reshape(value["dims"]) for name, value in run.items()}
                      for run in pair] for path, pair in json.loads(done.stdout).items()}
    ids = np.array([[2, 40, 41, 42, 43, 44, 45, 3]], dtype=np.int64)
    for path, (on_web, on_cpu) in outputs.items():
        if path.endswith("/model.onnx"):
            for name, value in on_cpu.items():
                assert np.abs(on_web[name] - value).max() <= TOLERANCE["browser", "fp32"] * max(1.0, np.abs(value).max()), path
        else:
            folder = Path(path).parent.parent
            manifest = read_manifest(folder)
            spec = get_task(manifest.task)
            fp32 = outputs[path.replace("model_quantized.onnx", "model.onnx")][1]
            batch = Batch({"input_ids": ids, "attention_mask": np.ones_like(ids)}, scores_function(load_config(folder)))
            figures = fidelity([fp32], lambda feeds, got=on_web: got, spec, [batch])
            target = manifest.target()
            assert target.binding and meets(figures, target), f"{path}: int8 on WASM {figures} misses {target.binding}"


def test_the_node_example_runs_a_packaged_folder(packaged, exported, tmp_path):
    """examples/node/predict.mjs, as a user runs it (its node_modules being js/'s packages)."""
    require("the Node check", missing_node())
    shutil.copy(REPO / "examples" / "node" / "predict.mjs", tmp_path)
    (tmp_path / "node_modules").symlink_to(JS_DIR / "node_modules")
    done = subprocess.run(["node", "predict.mjs", str(packaged / "text-classification"), "--dtype", "q8", *TEXTS[:2]],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    expected = [[result] for result in dox.load(exported["text-classification"], variant="quantized")(TEXTS[:2])]
    assert_same(answers, expected, TOLERANCE["node", "q8"], "examples/node")
