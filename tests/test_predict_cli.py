"""`distilbert-onnx predict`: TEXT arguments or an --input file (.txt, .jsonl) to one JSON line per
input on stdout in input order, a progress bar on stderr for files, and one-line errors."""

from __future__ import annotations

import json

import pytest
from devices import without_cuda
from runtime_helpers import LONG_TEXT, TEXTS, assert_same

import distilbert_onnx as dox


@pytest.fixture(scope="module")
def pipes(exported):
    """pipes[task] -> the pipeline predict uses by default (variant auto: the int8 graph on CPU)."""

    class Pipes(dict):
        def __missing__(self, task):
            self[task] = dox.load(exported[task])
            return self[task]

    return Pipes()


def predict(cli, folder, *arguments):
    return cli("predict", folder, *arguments)


def lines_of(result) -> list:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def jsonable(value):
    return json.loads(json.dumps(value.tolist() if hasattr(value, "tolist") else value))


def assert_one_line_error(result, message: str, exit_code: int | None = None):
    assert result.exit_code != 0 if exit_code is None else result.exit_code == exit_code, result.output
    assert isinstance(result.exception, SystemExit)  # handled, not a crash
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr


def write_lines(path, lines) -> str:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


def write_jsonl(path, records) -> str:
    return write_lines(path, [json.dumps(record) for record in records])


# --- TEXT arguments -----------------------------------------------------------------------------


def test_texts_as_arguments(cli, exported, pipes):
    result = predict(cli, exported["text-classification"], *TEXTS)
    assert_same(lines_of(result), jsonable(pipes["text-classification"](TEXTS)), atol=1e-6)
    assert "text-classification on cpu with the quantized graph" in result.stderr
    assert "predicting" not in result.stderr  # no progress bar for arguments


def test_options_reach_the_pipeline(cli, exported, pipes, monkeypatch):
    folder = exported["text-classification"]
    loaded = []
    load = dox.load
    monkeypatch.setattr(dox, "load", lambda *args, **kwargs: loaded.append(load(*args, **kwargs)) or loaded[-1])
    result = predict(cli, folder, TEXTS[0], TEXTS[1], "--top-k", 2, "--function-to-apply", "sigmoid",
                     "--variant", "fp32", "--batch-size", 1, "--threads", 1)
    expected = load(folder, variant="fp32")(TEXTS[:2], top_k=2, function_to_apply="sigmoid")
    assert_same(lines_of(result), jsonable(expected), atol=1e-6)
    assert "with the fp32 graph" in result.stderr
    (pipe,) = loaded  # the real pipeline predict ran, with the thread count asked for
    assert pipe.model.session.get_session_options().intra_op_num_threads == 1


def test_question_and_choices_as_options(cli, exported, pipes):
    result = predict(cli, exported["question-answering"], TEXTS[0], TEXTS[1], "--question", "Who lives in Paris?",
                     "--top-k", 2, "--max-answer-len", 4, "--handle-impossible-answer")
    expected = pipes["question-answering"](question=["Who lives in Paris?"] * 2, context=TEXTS[:2], top_k=2,
                                           max_answer_len=4, handle_impossible_answer=True)
    assert_same(lines_of(result), jsonable(expected), atol=1e-6)

    result = predict(cli, exported["multiple-choice"], "Maria lives in", "John flew to",
                     "--choice", "Paris", "--choice", "London", "--choice", "Rome")
    lines = lines_of(result)
    assert [[entry["choice"] for entry in line] for line in lines] == [["Paris", "London", "Rome"]] * 2
    expected = pipes["multiple-choice"]([{"prompt": prompt, "choices": ["Paris", "London", "Rome"]}
                                         for prompt in ("Maria lives in", "John flew to")])
    assert_same(lines, jsonable(expected), atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize(
    "task, arguments, options",
    [
        ("token-classification", ["--aggregation-strategy", "first", "--ignore-labels", "O,B-PER", "--stride", 32],
         {"aggregation_strategy": "first", "ignore_labels": ["O", "B-PER"], "stride": 32}),
        ("token-classification", ["--ignore-labels", ""], {"ignore_labels": []}),
        ("fill-mask", ["--top-k", 2, "--targets", "paris, london,the"], {"top_k": 2, "targets": ["paris", "london", "the"]}),
        ("feature-extraction", ["--pooling", "cls", "--normalize"], {"pooling": "cls", "normalize": True}),
        ("feature-extraction", [], {}),
    ],
)
def test_task_options(cli, exported, pipes, task, arguments, options):
    texts = ["[MASK] " + text if task == "fill-mask" else text for text in (TEXTS[0], LONG_TEXT, TEXTS[3])]
    result = predict(cli, exported[task], *texts, *arguments)
    assert_same(lines_of(result), jsonable(pipes[task](texts, **options)), atol=1e-6)


# --- --input files ------------------------------------------------------------------------------


@pytest.mark.slow
def test_txt_file_one_text_per_line(cli, exported, pipes, tmp_path):
    texts = TEXTS * 30  # 150 lines: several batches, results in line order
    path = write_lines(tmp_path / "texts.txt", [texts[0], "", *texts[1:], "   "])  # blank lines are skipped
    result = predict(cli, exported["token-classification"], "--input", path, "--batch-size", 8,
                     "--aggregation-strategy", "simple")
    lines = lines_of(result)
    assert len(lines) == len(texts)
    assert_same(lines, jsonable(pipes["token-classification"](texts, aggregation_strategy="simple", batch_size=8)),
                atol=1e-6)
    assert "predicting" in result.stderr  # the progress bar goes to stderr


def test_txt_file_with_windows_line_endings(cli, exported, pipes, tmp_path):
    path = tmp_path / "crlf.txt"
    path.write_bytes(b"I love Paris.\r\nThe battery died.\r\n")
    lines = lines_of(predict(cli, exported["text-classification"], "--input", path))
    assert_same(lines, jsonable(pipes["text-classification"](["I love Paris.", "The battery died."])), atol=1e-6)


def test_jsonl_text_classification_with_pairs(cli, exported, pipes, tmp_path):
    records = [{"text": TEXTS[0]}, {"text": TEXTS[1], "text_pair": TEXTS[2]}, TEXTS[3], {"text": "x", "id": 7}]
    path = write_jsonl(tmp_path / "pairs.jsonl", records)
    lines = lines_of(predict(cli, exported["text-classification"], "--input", path, "--top-k", 2))
    inputs = [TEXTS[0], {"text": TEXTS[1], "text_pair": TEXTS[2]}, TEXTS[3], "x"]
    assert_same(lines, jsonable(pipes["text-classification"](inputs, top_k=2)), atol=1e-6)


def test_jsonl_question_answering(cli, exported, pipes, tmp_path):
    records = [{"question": "Who lives in Paris?", "context": text} for text in TEXTS]
    records.append({"question": "What opens on Sundays?", "context": LONG_TEXT, "id": "long"})
    path = write_jsonl(tmp_path / "qa.jsonl", records)
    lines = lines_of(predict(cli, exported["question-answering"], "--input", path, "--doc-stride", 64,
                             "--max-seq-len", 256, "--max-question-len", 4, "--top-k", 1))
    expected = pipes["question-answering"](question=[r["question"] for r in records], context=[r["context"] for r in records],
                                           doc_stride=64, max_seq_len=256, max_question_len=4)
    assert_same(lines, jsonable(expected), atol=1e-6)
    assert all(set(line) == {"score", "start", "end", "answer"} for line in lines)


def test_jsonl_multiple_choice_and_fill_mask(cli, exported, pipes, tmp_path):
    records = [{"prompt": "Maria lives in", "choices": ["Paris", "Rome"]},
               {"prompt": "The battery", "choices": ["died.", "lasts two days.", "is blue."]}]
    lines = lines_of(predict(cli, exported["multiple-choice"], "--input", write_jsonl(tmp_path / "mc.jsonl", records)))
    assert_same(lines, jsonable(pipes["multiple-choice"](records)), atol=1e-6)

    records = [{"text": "Paris is the [MASK] of France."}, {"text": "The [MASK] was [MASK]."}]
    lines = lines_of(predict(cli, exported["fill-mask"], "--input", write_jsonl(tmp_path / "fm.jsonl", records)))
    assert_same(lines, jsonable(pipes["fill-mask"]([record["text"] for record in records])), atol=1e-6)


# --- errors: one line, no traceback, non-zero exit ----------------------------------------------


@pytest.mark.parametrize(
    "task, arguments, message, exit_code",
    [
        ("text-classification", [], "give either TEXT arguments or --input FILE", 2),
        ("text-classification", ["x", "--input", "__FILE__"], "give either TEXT arguments or --input FILE", 2),
        ("text-classification", ["x", "--pooling", "mean"], "text-classification does not take pooling", 1),
        ("text-classification", ["x", "--top-k", 0], "top_k must be a positive integer or None, got 0", 1),
        pytest.param("text-classification", ["x", "--device", "cuda"], "CUDA was asked for", 1, marks=without_cuda),
        ("text-classification", ["x", "--device", "tpu"], "Invalid value for '--device'", 2),
        ("text-classification", ["x", "--variant", "fp16"], "the fp16 graph is built for cuda, not cpu", 1),
        ("text-classification", ["x", "--batch-size", 0], "Invalid value for '--batch-size'", 2),
        ("question-answering", ["Maria lives in Paris."], "question-answering needs --question", 2),
        ("question-answering", ["", "--question", "Where?"], "empty context", 1),
        ("question-answering", ["Paris", "--question", "Where?", "--doc-stride", 1000], "doc_stride must be", 1),
        ("multiple-choice", ["Maria lives in"], "multiple-choice needs --choice", 2),
        ("fill-mask", ["Paris is the capital."], "no [MASK] token in 'Paris is the capital.'", 1),
        ("token-classification", ["x", "--stride", 100000], "stride must be an integer from 0 to 509", 1),
    ],
)
def test_errors_are_one_line(cli, exported, tmp_path, task, arguments, message, exit_code):
    arguments = [write_lines(tmp_path / "in.txt", ["x"]) if argument == "__FILE__" else argument for argument in arguments]
    assert_one_line_error(predict(cli, exported[task], *arguments), message, exit_code)


@pytest.mark.parametrize(
    "task, content, message",
    [
        ("text-classification", '{"text": "fine"}\nnot json\n', "bad.jsonl line 2 is not JSON"),
        ("text-classification", '{"sentence": "no text field"}\n', "line 1: text-classification needs an object with text"),
        ("question-answering", '{"question": "Where?"}\n', "line 1: question-answering needs an object with question, context"),
        ("question-answering", '"just a string"\n', "line 1: question-answering needs an object with question, context"),
        ("multiple-choice", '{"prompt": "Maria", "choices": "Paris"}\n', "choices must be a non-empty list of strings"),
        ("text-classification", '{"text": null}\n', "None: expected a string"),
        ("token-classification", '{"text": 42}\n', "is a int: expected a string"),
    ],
)
def test_bad_jsonl_is_one_line_error(cli, exported, tmp_path, task, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    assert_one_line_error(predict(cli, exported[task], "--input", path), message, 1)


def test_undecodable_file_is_one_line_error(cli, exported, tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("caf\xe9\n".encode("latin-1"))
    assert_one_line_error(predict(cli, exported["text-classification"], "--input", path), "utf-8", 1)


def test_bad_folders_are_one_line_errors(cli, exported, tmp_path):
    assert_one_line_error(predict(cli, tmp_path / "nowhere", "x"), "does not exist", 2)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    assert_one_line_error(predict(cli, broken, "x"), "holds no ONNX model for cpu", 1)
    assert_one_line_error(predict(cli, exported["text-classification"], "--input", tmp_path / "missing.txt"),
                          "does not exist", 2)


def test_help(cli):
    result = cli("predict", "--help")
    assert result.exit_code == 0
    for option in ("--input", "--device", "--variant", "--batch-size", "--question", "--choice", "--top-k",
                   "--aggregation-strategy", "--doc-stride", "--targets", "--pooling", "--normalize"):
        assert option in result.stdout
    assert "one JSON line per input" in result.stdout
