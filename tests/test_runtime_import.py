"""The import boundary: the runtime never imports torch or transformers, and a base install (no extras:
no torch, onnx, safetensors, sympy, transformers, huggingface_hub, openvino or nncf) loads and runs every task."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from import_blocker import BLOCKER

TASKS = ["text-classification", "token-classification", "question-answering", "fill-mask", "multiple-choice",
         "feature-extraction"]
# What the extras bring; a base install has none of them.
EXTRAS = ["torch", "transformers", "onnx", "safetensors", "sympy", "huggingface_hub", "openvino", "nncf"]
EXTRAS += ["starlette", "uvicorn", "prometheus_client", "yaml"]  # [serve]
EXTRAS += ["pyarrow", "ray"]  # [files], [ray]

RUN_EVERY_TASK = """
import json, sys
import distilbert_onnx as dox

folders = json.loads(sys.argv[1])
inputs = {{
    "text-classification": ([["I love Paris.", {{"text": "a", "text_pair": "b"}}]], {{}}),
    "token-classification": (["Maria Gonzalez lives in Paris."], {{"aggregation_strategy": "simple"}}),
    "question-answering": ((), {{"question": "Where?", "context": "Maria lives in Paris."}}),
    "fill-mask": (["Paris is the [MASK] of France."], {{}}),
    "multiple-choice": (["Maria lives in"], {{"choices": ["Paris", "Rome"]}}),
    "feature-extraction": (["Hello"], {{"pooling": "mean", "normalize": True}}),
}}
for task, folder in folders.items():
    for variant in ("auto", "fp32"):
        pipe = dox.load(folder, variant=variant)
        assert pipe.task == task, (pipe.task, task)
        args, kwargs = inputs[task]
        result = pipe(*args, **kwargs)
        assert result, (task, result)
loaded = sorted(name for name in sys.modules if name.split(".")[0] in {modules!r})
print(json.dumps(loaded))
"""


def run_python(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def folders(exported) -> str:
    return json.dumps({task: str(exported[task]) for task in TASKS})


@pytest.mark.slow
def test_runtime_never_imports_torch_or_transformers(folders):
    done = run_python(textwrap.dedent(RUN_EVERY_TASK.format(modules=EXTRAS)), folders)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


@pytest.mark.slow
def test_base_install_loads_and_runs_every_task(folders):
    code = textwrap.dedent(BLOCKER.format(blocked=EXTRAS)) + textwrap.dedent(RUN_EVERY_TASK.format(modules=EXTRAS))
    done = run_python(code, folders)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_the_blocker_blocks():
    """The base-install test means something only if the blocked packages really cannot be imported."""
    done = run_python(textwrap.dedent(BLOCKER.format(blocked=EXTRAS)) + "import torch")
    assert done.returncode != 0 and "blocked: not in a base install" in done.stderr


def test_predict_cli_on_a_base_install(exported):
    code = textwrap.dedent(BLOCKER.format(blocked=EXTRAS)) + textwrap.dedent(
        """
        import sys
        from distilbert_onnx.cli import main
        main(["predict", sys.argv[1], "I love Paris.", "The battery died."])
        """
    )
    done = run_python(code, str(exported["text-classification"]))
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [sorted(line) for line in lines] == [["label", "score"], ["label", "score"]]



EXTRAS = ["torch", "transformers", "onnx", "safetensors", "sympy", "huggingface_hub", "openvino", "nncf"]
EXTRAS += ["starlette", "uvicorn", "prometheus_client", "yaml"]  # [serve]
EXTRAS += ["pyarrow", "ray"]  # [files], [ray]
