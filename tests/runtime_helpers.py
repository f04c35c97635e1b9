"""Helpers shared by the runtime tests: comparing results with transformers', sample inputs, and a
session stand-in that records what onnxruntime is fed."""

from __future__ import annotations

import shutil

import numpy as np

from distilbert_onnx.exporting.demo import sample_texts

ATOL = 1e-4

TEXTS = [
    "Maria Gonzalez lives in Paris and works for the United Nations in Geneva.",
    "John Smith flew from New York to London with British Airways on Monday.",
    "I love this phone, the battery easily lasts two days.",
    "Unbelievably, the naïve café in Zürich ☃ didn't open before 10am!",
    "Hello",
]
# About 3,400 tokens: several windows for a 512-position model.
LONG_TEXT = " ".join(sample_texts())
# About 260 tokens: several windows for a 64-position model.
MEDIUM_TEXT = " ".join(sample_texts()[:16])
# The parity tests' question, context and masked texts (test_runtime_parity*.py).
QUESTION = "Where does Maria live?"
CONTEXT = (
    "Maria Gonzalez lives in Paris and works for the United Nations in Geneva. "
    "John Smith flew from New York to London with British Airways on Monday."
)
MASKED = ["Paris is the [MASK] of France.", "The [MASK] was late [MASK] again.", "[MASK]"]


def assert_same(ours, theirs, atol: float = ATOL, path: str = "result") -> None:
    """`ours` has the structure of `theirs`: the same keys in the same order, equal strings and ints,
    floats within `atol`. Our values must be plain Python types (they go to JSON), except arrays."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict), f"{path}: a {type(ours).__name__}, expected a dict"
        assert list(ours) == list(theirs), f"{path}: keys {list(ours)}, expected {list(theirs)}"
        for key in theirs:
            assert_same(ours[key], theirs[key], atol, f"{path}[{key!r}]")
    elif isinstance(theirs, (list, tuple)):
        assert isinstance(ours, list), f"{path}: a {type(ours).__name__}, expected a list"
        assert len(ours) == len(theirs), f"{path}: {len(ours)} items, expected {len(theirs)}"
        for index, (mine, want) in enumerate(zip(ours, theirs)):
            assert_same(mine, want, atol, f"{path}[{index}]")
    elif theirs is None:
        assert ours is None, f"{path}: {ours!r}, expected None"
    elif isinstance(theirs, str):
        assert isinstance(ours, str) and ours == theirs, f"{path}: {ours!r}, expected {theirs!r}"
    elif isinstance(theirs, (int, np.integer)):
        assert isinstance(ours, int) and not isinstance(ours, bool), f"{path}: {ours!r} is not an int"
        assert ours == theirs, f"{path}: {ours}, expected {theirs}"
    elif isinstance(theirs, (float, np.floating)):
        assert isinstance(ours, float), f"{path}: {ours!r} is a {type(ours).__name__}, not a float"
        assert abs(ours - float(theirs)) <= atol, f"{path}: {ours}, expected {float(theirs)}"
    elif hasattr(theirs, "shape"):  # numpy array or torch tensor (scalars are above)
        want = np.asarray(theirs)
        assert isinstance(ours, np.ndarray), f"{path}: a {type(ours).__name__}, expected a numpy array"
        assert ours.shape == want.shape, f"{path}: shape {ours.shape}, expected {want.shape}"
        np.testing.assert_allclose(ours, want, atol=atol, rtol=0, err_msg=path)
    else:
        raise AssertionError(f"{path}: cannot compare {type(theirs).__name__}")


def sample(task: str, index: int = 0) -> dict:
    """A valid single input of `task`, as keyword arguments."""
    text = TEXTS[index % len(TEXTS)]
    if task == "fill-mask":
        return {"inputs": f"{text} It was [MASK]."}
    if task == "question-answering":
        return {"question": "Who lives in Paris?", "context": text}
    if task == "multiple-choice":
        return {"inputs": text, "choices": ["yes", "no", text]}
    return {"inputs": text}


def call(pipe, arguments: dict, **options):
    """The pipeline on a `sample`: its inputs positional, its other entries as keywords."""
    arguments = dict(arguments)
    inputs = arguments.pop("inputs", None)
    return pipe(inputs, **arguments, **options) if inputs is not None else pipe(**arguments, **options)


def copy_folder(source, tmp_path, name="copy"):
    return shutil.copytree(source, tmp_path / name)


class RecordingSession:
    """Stands in for an onnxruntime session and keeps a copy of every feed it is given."""

    def __init__(self, session):
        self.session = session
        self.feeds: list[dict[str, np.ndarray]] = []

    def run(self, output_names, feeds, *args):
        self.feeds.append({name: np.array(value) for name, value in feeds.items()})
        return self.session.run(output_names, feeds, *args)


def one_error_line(result) -> str:
    """The one `Error: ...` line of a CLI run that failed as a user mistake should (exit 1, no crash)."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output  # not a crash
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]
