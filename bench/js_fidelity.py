"""transformers.js on a packaged folder against this project's Python pipeline, on real weights.

all-MiniLM-L6-v2 (rewritten as DistilBERT, exported as feature extraction) is packaged for
transformers.js; Node (transformers.js on onnxruntime-node) computes sentence vectors (mean pooling,
normalized) of held-out real English texts with fp32 and with q8, one text per call, and they are
compared with the Python pipeline's on the same texts (int8 one text per call too: its activation
scales are per call, so int8 vectors depend on the texts padded beside them; export measures int8 on
length-bucketed batches, which pad little):
  fp32 (Node) against fp32 (Python)   goal: mean cosine >= 0.9999
  q8 (Node) against fp32 (Python)     goal: the int8 target recorded at export (mean and worst cosine)
  q8 (Node) against int8 (Python)     the same graph on both sides
Fidelity only (no timing).  python bench/js_fidelity.py [--texts 600] [--folder EXPORTED]
[--calibration-sample]: the built-in calibration texts export measured int8 on, instead of held-out texts
"""

from __future__ import annotations

import argparse
import json

import numpy as np

import distilbert_onnx as dox
from distilbert_onnx.samples import sample_texts
from common import WORK, real_texts, table
from js_common import OPTIONS, exported_folder, node, packaged



def wasm_vectors(out, texts) -> dict[str, np.ndarray]:
    """Mean-pooled vectors of the packaged graphs run by onnxruntime-web (WASM) in Node."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(out / "tokenizer.json"))
    tokenizer.enable_truncation(512)
    ids = [encoding.ids for encoding in tokenizer.encode_batch(texts)]
    vectors = {dtype: np.array(node("run_wasm.mjs", {"graph": str(out / f"onnx/model{suffix}.onnx"), "inputs": ids}))
               for dtype, suffix in (("fp32", ""), ("q8", "_quantized"))}
    return {dtype: array / np.linalg.norm(array, axis=1, keepdims=True) for dtype, array in vectors.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=600)
    parser.add_argument("--folder", help="an exported feature-extraction folder [default: all-MiniLM-L6-v2]")
    parser.add_argument("--calibration-sample", action="store_true",
                        help="the built-in calibration texts (what export measured int8 on) instead of held-out real texts")
    args = parser.parse_args()
    folder = exported_folder(args.folder)
    out = packaged(folder)
    texts = sample_texts() if args.calibration_sample else real_texts(args.texts)
    js_options, py_options = OPTIONS["feature-extraction"]
    calls = [{"model": out.name, "task": "feature-extraction", "dtype": dtype, "args": [text, js_options]}
             for dtype in ("fp32", "q8") for text in texts]
    results = node("run_pipelines.mjs", {"models": str(out.parent), "calls": calls})
    in_node = {dtype: np.concatenate([np.array(result["data"]) for result in part])
               for dtype, part in (("fp32", results[:len(texts)]), ("q8", results[len(texts):]))}
    in_python = {variant: np.array(dox.load(folder, variant=variant)(texts, batch_size=1, **py_options))
                 for variant in ("fp32", "quantized")}
    on_wasm = wasm_vectors(out, texts)
    manifest = json.loads((out / "distilbert_onnx.json").read_text())
    target = manifest["variants"]["quantized"]["quantization"]["target"]
    rows = []
    for name, a, b, goal in (
        ("fp32 (Node) vs fp32 (Python)", in_node["fp32"], in_python["fp32"], "mean >= 0.9999"),
        ("q8 (Node) vs fp32 (Python)", in_node["q8"], in_python["fp32"],
         f"mean >= {target['min_cosine']}, worst >= {target['min_worst_cosine']}"),
        ("q8 (Node) vs int8 (Python)", in_node["q8"], in_python["quantized"], ""),
        ("fp32 (WASM) vs fp32 (Python)", on_wasm["fp32"], in_python["fp32"], "mean >= 0.9999"),
        ("q8 (WASM) vs fp32 (Python)", on_wasm["q8"], in_python["fp32"],
         f"mean >= {target['min_cosine']}, worst >= {target['min_worst_cosine']}"),
    ):
        cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        rows.append([name, f"{cosine.mean():.6f}", f"{cosine.min():.6f}", f"{np.abs(a - b).max():.2e}", goal])
    print(table(f"sentence vectors of {len(texts)} real texts, {folder.name} packaged for transformers.js",
                ["compared", "mean cos", "worst cos", "max abs diff", "goal"], rows))
    (WORK / "js_fidelity.json").write_text(json.dumps({"rows": rows, "package": manifest["package"]}, indent=2))


if __name__ == "__main__":
    main()
