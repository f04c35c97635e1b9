"""What the transformers.js tests share: finding Node, the npm packages and Chromium (skipped with the
reason where they are missing, a failure under CI), packaging the tiny exports, running js/'s Node
script, the inputs every task is called with on both sides, and the comparison of their answers."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
JS_DIR = REPO / "js"
NODE_MODULES = JS_DIR / "node_modules"
INSTALL = "cd js && npm ci --ignore-scripts (the README's test command does)"

# How far a score (or a vector component) may be from the Python pipeline's on the same input.
# Node runs the graphs on onnxruntime-node, the same CPU kernels as onnxruntime in Python: fp32 and
# int8 agree to float noise. The browser runs onnxruntime-web's WASM kernels: fp32 agrees as closely;
# its int8 kernels round otherwise than the x86 ones (u8s8 on AVX2), so int8 outputs differ there:
# measured on the tiny models, the classifier's scores by under 1e-5, fill-mask's logits by up to 0.12.
TOLERANCE = {("node", "fp32"): 1e-4, ("node", "q8"): 1e-4, ("browser", "fp32"): 1e-4, ("browser", "q8"): 2e-3}
DTYPE_VARIANTS = {"fp32": "fp32", "q8": "quantized"}

TEXTS = [
    "Maria Gonzalez lives in Paris and works for the United Nations in Geneva.",
    "John Smith flew from New York to London with British Airways on Monday.",
    "What a terrible day.",
]
# transformers.js scores spans of tokens; transformers (and this project) spans of words, adding up the
# token spans that give one word span. On a context whose words are each one token of the test
# vocabulary the two are the same spans.
QUESTION, CONTEXT = "Where does Maria live?", "Maria Gonzalez lives in Paris and works in Geneva; the capital of France is Paris."
QA_AS_TRANSFORMERS_JS = {"handle_impossible_answer": True, "max_answer_len": 512}


def _call(js_args: list, py_args: tuple = (), **py_options):
    return {"js": js_args, "py": (py_args, py_options)}


# Per task: the calls made on both sides, transformers.js's arguments and the Python pipeline's.
CALLS = {
    "text-classification": [
        _call([TEXTS], (TEXTS,)),
        _call([TEXTS[2], {"top_k": 2}], (TEXTS[2],), top_k=2),
    ],
    "token-classification": [
        _call([TEXTS[0]], (TEXTS[0],), aggregation_strategy="none"),
        _call([TEXTS[1], {"ignore_labels": []}], (TEXTS[1],), aggregation_strategy="none", ignore_labels=[]),
    ],
    # transformers.js scores spans over softmaxes that include [CLS] (then drops the empty answer) and
    # has no longest answer: transformers' rule with these two options.
    "question-answering": [
        _call([QUESTION, CONTEXT], question=QUESTION, context=CONTEXT, **QA_AS_TRANSFORMERS_JS),
        _call([QUESTION, CONTEXT, {"top_k": 2}], question=QUESTION, context=CONTEXT, top_k=2, **QA_AS_TRANSFORMERS_JS),
    ],
    "fill-mask": [
        _call(["The capital of France is [MASK]."], ("The capital of France is [MASK].",)),
        _call(["Paris is the [MASK] of France.", {"top_k": 3}], ("Paris is the [MASK] of France.",), top_k=3),
    ],
    "feature-extraction": [
        _call([TEXTS[0], {"pooling": "mean", "normalize": True}], (TEXTS[0],), pooling="mean", normalize=True),
        _call([TEXTS[1], {"pooling": "cls"}], (TEXTS[1],), pooling="cls"),
        _call([TEXTS[2]], (TEXTS[2],)),
    ],
}


def require(what: str, missing: str | None) -> None:
    """Skip with the reason when `missing` says something is absent; under CI that is a failure."""
    if missing is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what}: {missing} (CI is set, so this is a failure, not a skip)")
    pytest.skip(f"{what}: {missing}")


def missing_node() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed"
    if not (NODE_MODULES / "@huggingface" / "transformers").is_dir():
        return f"js/node_modules lacks @huggingface/transformers: {INSTALL}"
    return None


def package_all(exported, root: Path, tasks=tuple(CALLS)) -> Path:
    """Package exported[task] for transformers.js into root/task for every task; returns root."""
    from distilbert_onnx.transformersjs import package

    for task in tasks:
        package(exported[task], root / task)
    return root


def run_node(models: Path, calls: list[dict], work: Path) -> list:
    """js/run_pipelines.mjs on `calls` ({"model", "task", "dtype", "args"}): its results, in order."""
    job = work / "job.json"
    job.write_text(json.dumps({"models": str(models), "calls": calls}), encoding="utf-8")
    done = subprocess.run(["node", str(JS_DIR / "run_pipelines.mjs"), str(job)], capture_output=True, text=True,
                          timeout=300, cwd=JS_DIR)
    assert done.returncode == 0, f"transformers.js could not run the packaged folders:\n{done.stderr[-3000:]}"
    return json.loads(done.stdout)


def python_answer(pipe, call: dict):
    args, options = call["py"]
    return pipe(*args, **options)


def assert_same(js, py, tolerance: float, where: str) -> None:
    """transformers.js's answer `js` equals the Python pipeline's `py`: equal labels, tokens, words,
    indices and answers, scores and vectors within `tolerance`. Keys only this project gives (start
    and end of tokens) are not compared; an answer is compared as text, without case and spaces
    (transformers.js decodes the answer's tokens, this project slices the context)."""
    if isinstance(js, dict) and set(js) == {"dims", "data"}:  # a tensor
        flat_js, flat_py = _flatten(js["data"]), _flatten(py)
        assert len(flat_js) == len(flat_py), f"{where}: {len(flat_js)} values against {len(flat_py)}"
        worst = max(abs(a - b) for a, b in zip(flat_js, flat_py))
        assert worst <= tolerance * max(1.0, max(abs(b) for b in flat_py)), f"{where}: vectors differ by {worst:.2e}"
    elif isinstance(js, dict):
        assert isinstance(py, dict), f"{where}: {js!r} against {py!r}"
        for key, value in js.items():
            assert key in py, f"{where}: transformers.js gives {key!r}, the Python pipeline does not ({py!r})"
            if key == "answer":
                assert "".join(value.lower().split()) == "".join(py[key].lower().split()), f"{where}: {value!r} != {py[key]!r}"
            else:
                assert_same(value, py[key], tolerance, f"{where}.{key}")
    elif isinstance(js, list):
        assert isinstance(py, list) and len(js) == len(py), f"{where}: {js!r} against {py!r}"
        for index, (a, b) in enumerate(zip(js, py)):
            assert_same(a, b, tolerance, f"{where}[{index}]")
    elif isinstance(js, float) or isinstance(py, float):
        assert math.isclose(js, py, abs_tol=tolerance), f"{where}: {js} against {py} (tolerance {tolerance})"
    else:
        assert js == py, f"{where}: {js!r} against {py!r}"


def _flatten(value) -> list[float]:
    if isinstance(value, (list, tuple)):
        return [number for item in value for number in _flatten(item)]
    return [float(value)]
