"""Bulk inference on the local engine: real Parquet, CSV and JSON Lines tables through
`distilbert-onnx predict --input TABLE --output OUT`, one output row per input row in input order, with
the id and kept columns and the task's results as columns; bad rows; an interrupted job resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from bulk_helpers import BAD_JSONL, assert_close, assert_ok, bulk, read_output, rows_of, write_table
from runtime_helpers import TEXTS

import distilbert_onnx as dox

@pytest.fixture(scope="module")
def fp32(exported):
    """fp32[task] -> (folder, its fp32 pipeline): fp32 results do not depend on the batch they ran in."""
    made = {}

    def get(task):
        if task not in made:
            made[task] = (exported[task], dox.load(exported[task], variant="fp32"))
        return made[task]

    return get


# --- formats, order and columns ---------------------------------------------------------------


@pytest.mark.parametrize("source_name", ["in.parquet", "in.csv", "in.jsonl"])
@pytest.mark.parametrize("target_name", ["out.parquet", "out.jsonl"])
def test_every_format_keeps_order_ids_and_kept_columns(cli, fp32, tmp_path, source_name, target_name):
    folder, pipe = fp32("text-classification")
    rows = rows_of(23)
    source = write_table(tmp_path / source_name, rows)
    target = tmp_path / target_name
    result = assert_ok(bulk(cli, folder, source, target, "--id-column", "id", "--keep-columns", "lang,n",
                            "--part-rows", 10, "--batch-size", 4))
    expected = pipe([row["text"] for row in rows])
    got = read_output(target)
    assert [list(row) for row in got] == [["id", "lang", "n", "label", "score"]] * len(rows)
    assert_close(got, [{"id": row["id"], "lang": row["lang"], "n": row["n"], **want} for row, want in zip(rows, expected)])
    assert "23 rows" in result.stderr and "23 written" in result.stderr and "rows/s" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([source_name, target_name])  # nothing else left


def test_parquet_types_of_kept_columns_are_kept(cli, fp32, tmp_path):
    folder, _ = fp32("text-classification")
    table = pa.table({"key": pa.array([1, 2, 3], pa.int32()), "when": pa.array([1, 2, 3], pa.timestamp("ms", tz="UTC")),
                      "text": TEXTS[:3]})
    pq.write_table(table, tmp_path / "in.parquet")
    assert_ok(bulk(cli, folder, tmp_path / "in.parquet", tmp_path / "out.parquet", "--id-column", "key",
                   "--keep-columns", "when"))
    schema = pq.read_schema(tmp_path / "out.parquet")
    assert schema.field("key").type == pa.int32() and schema.field("when").type == pa.timestamp("ms", tz="UTC")


def test_folder_output_is_numbered_parts(cli, fp32, tmp_path):
    folder, pipe = fp32("text-classification")
    rows = rows_of(25)
    source = write_table(tmp_path / "in.parquet", rows)
    assert_ok(bulk(cli, folder, source, tmp_path / "scored", "--part-rows", 10, "--id-column", "id"))
    assert sorted(p.name for p in (tmp_path / "scored").iterdir()) == [
        "part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    assert pq.read_table(tmp_path / "scored").column("id").to_pylist() == [row["id"] for row in rows]
    assert_ok(bulk(cli, folder, source, tmp_path / "lines", "--part-rows", 10, "--format", "jsonl"))
    assert [row["label"] for row in read_output(tmp_path / "lines")] == [r["label"] for r in pipe([r["text"] for r in rows])]


def _task_rows():
    return {
        "text-classification": ([{"text": t, "text_pair": "Paris"} for t in TEXTS], ["--text-pair-column", "text_pair"],
                                lambda rows: [{"text": r["text"], "text_pair": r["text_pair"]} for r in rows], {}),
        "token-classification": ([{"body": t} for t in TEXTS], ["--text-column", "body", "--aggregation-strategy", "simple"],
                                 lambda rows: [r["body"] for r in rows], {"aggregation_strategy": "simple"}),
        "question-answering": ([{"question": "Where does Maria live?", "context": t} for t in TEXTS], [],
                               lambda rows: [dict(r) for r in rows], {}),
        "fill-mask": ([{"text": "Paris is the [MASK] of France."}, {"text": "I [MASK] this phone."}], ["--top-k", 3],
                      lambda rows: [r["text"] for r in rows], {"top_k": 3}),
        "multiple-choice": ([{"prompt": "Maria lives in", "choices": ["Paris", "Rome", "Geneva"]},
                             {"prompt": "John flew to", "choices": ["London", "the moon"]}], [],
                            lambda rows: [dict(r) for r in rows], {}),
        "feature-extraction": ([{"text": t} for t in TEXTS], ["--pooling", "mean", "--normalize"],
                               lambda rows: [r["text"] for r in rows], {"pooling": "mean", "normalize": True}),
    }


@pytest.mark.slow
@pytest.mark.parametrize("task", list(_task_rows()))
@pytest.mark.parametrize("target_name", ["out.parquet", "out.jsonl"])
def test_every_task(cli, fp32, tmp_path, task, target_name):
    folder, pipe = fp32(task)
    rows, arguments, inputs, options = _task_rows()[task]
    source = write_table(tmp_path / "in.parquet", rows)
    assert_ok(bulk(cli, folder, source, tmp_path / target_name, *arguments))
    expected = [want if isinstance(want, dict) else {"result": want} for want in pipe(inputs(rows), **options)]
    assert_close(read_output(tmp_path / target_name), json.loads(json.dumps(_plain(expected))))


def _plain(value):
    return value.tolist() if hasattr(value, "tolist") else [_plain(v) for v in value] if isinstance(value, list) else (
        {k: _plain(v) for k, v in value.items()} if isinstance(value, dict) else value)


def test_token_vectors_and_empty_entity_lists_are_list_columns(cli, fp32, tmp_path):
    folder, pipe = fp32("token-classification")
    rows = [{"text": t} for t in ["Hello", *TEXTS]]
    source = write_table(tmp_path / "in.jsonl", rows)
    labels = ",".join(pipe.context.config.id2label.values())  # ignore every label: all lists empty
    assert_ok(bulk(cli, folder, source, tmp_path / "none.parquet", "--ignore-labels", labels))
    assert read_output(tmp_path / "none.parquet") == [{"result": []}] * len(rows)
    folder, _ = fp32("feature-extraction")
    assert_ok(bulk(cli, folder, source, tmp_path / "vectors.parquet", "--result-column", "vectors"))
    table = pq.read_table(tmp_path / "vectors.parquet")
    assert table.schema.names == ["vectors"] and pa.types.is_list(table.schema.field("vectors").type)


# --- bad rows -------------------------------------------------------------------------------------


def test_on_error_fail_stops_and_leaves_nothing(cli, fp32, tmp_path):
    folder, _ = fp32("text-classification")
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(BAD_JSONL) + "\n", encoding="utf-8")
    result = bulk(cli, folder, source, tmp_path / "out.parquet", "--id-column", "id")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "Error: in.jsonl row 2, column 'text': missing value (--on-error skip sets bad rows aside)" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def test_on_error_skip_sets_bad_rows_aside(cli, fp32, tmp_path):
    folder, pipe = fp32("text-classification")
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(BAD_JSONL) + "\n", encoding="utf-8")
    target = tmp_path / "out.parquet"
    result = assert_ok(bulk(cli, folder, source, target, "--id-column", "id", "--on-error", "skip",
                            "--errors", tmp_path / "bad.jsonl", "--part-rows", 4))
    got = read_output(target)
    assert [row["id"] for row in got] == [1, 6]
    assert_close([row["label"] for row in got], [r["label"] for r in pipe(["I love Paris.", "The battery died."])])
    errors = [json.loads(line) for line in (tmp_path / "bad.jsonl").read_text().splitlines()]
    assert [(e["row"], e["column"], e.get("id")) for e in errors] == [(2, "text", 2), (3, "text", 3), (4, "text", 4),
                                                                      (5, None, None)]
    assert errors[0]["error"] == "row 2, column 'text': missing value"
    assert errors[2]["error"] == "row 4, column 'text': a int value, expected text"
    assert "line 5 is not JSON" in errors[3]["error"]
    assert "6 rows" in result.stderr and "2 written" in result.stderr and "4 bad row(s) set aside" in result.stderr


def test_csv_empty_cell_is_missing_and_digits_are_text(cli, fp32, tmp_path):
    folder, pipe = fp32("text-classification")
    source = tmp_path / "in.csv"
    source.write_text('id,text\n1,I love Paris.\n2,\n3,12345\n', encoding="utf-8")
    assert_ok(bulk(cli, folder, source, tmp_path / "out.jsonl", "--id-column", "id", "--on-error", "skip"))
    assert [row["id"] for row in read_output(tmp_path / "out.jsonl")] == [1, 3]
    assert read_output(tmp_path / "out.jsonl")[1]["label"] == pipe(["12345"])[0]["label"]
    errors = (tmp_path / "out.jsonl.errors.jsonl").read_text()
    assert "row 2, column 'text': missing value" in errors


def test_the_pipelines_own_checks_cost_one_row_not_a_batch(cli, fp32, tmp_path):
    folder, pipe = fp32("fill-mask")
    texts = ["Paris is the [MASK] of France.", "no mask here", "I [MASK] this phone.", "Rome is [MASK]."]
    source = write_table(tmp_path / "in.parquet", [{"text": t} for t in texts])
    result = assert_ok(bulk(cli, folder, source, tmp_path / "out.parquet", "--on-error", "skip"))
    assert_close(read_output(tmp_path / "out.parquet"), [{"result": r} for r in pipe([texts[0], texts[2], texts[3]])])
    error = json.loads((tmp_path / "out.parquet.errors.jsonl").read_text())
    assert error["row"] == 2 and error["column"] is None and "no [MASK] token" in error["error"]
    assert "1 bad row(s)" in result.stderr


@pytest.mark.parametrize("arguments, message", [
    (["--text-column", "body"], "in.parquet has no column 'body' (its columns: id, text"),
    (["--question-column", "q"], "--question-column: text-classification reads text, text_pair only"),
    (["--keep-columns", "label"], "the output would have two columns named 'label', a kept input column and a result"),
    (["--errors", "bad.jsonl"], "--errors goes with --on-error skip"),
    (["--top-k", "0"], "top_k must be a positive integer"),
])
def test_user_mistakes_are_one_line_and_leave_nothing(cli, fp32, tmp_path, arguments, message):
    folder, _ = fp32("text-classification")
    source = write_table(tmp_path / "in.parquet", [{"id": 1, "text": "a", "label": "x"}])
    result = bulk(cli, folder, source, tmp_path / "out.parquet", *arguments)
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert message in result.stderr, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]


def test_existing_output_needs_force_and_bulk_options_need_output(cli, fp32, tmp_path):
    folder, _ = fp32("text-classification")
    source = write_table(tmp_path / "in.csv", rows_of(3))
    (tmp_path / "out.jsonl").write_text("old\n")
    result = bulk(cli, folder, source, tmp_path / "out.jsonl")
    assert result.exit_code == 1 and "exists: pass --force" in result.stderr
    assert_ok(bulk(cli, folder, source, tmp_path / "out.jsonl", "--force"))
    assert len(read_output(tmp_path / "out.jsonl")) == 3
    result = cli("predict", str(folder), "--input", str(source), "--id-column", "id")
    assert result.exit_code == 2 and "--id-column go with --output" in result.output


# --- resume -------------------------------------------------------------------------------------


def _cli(folder, source, target, *arguments):
    code = "import sys; from distilbert_onnx.cli import main; main(sys.argv[1:])"
    return [sys.executable, "-c", code, "predict", str(folder), "--input", str(source), "--output", str(target),
            "--variant", "fp32", "--threads", "1", *map(str, arguments)]


@pytest.mark.slow
def test_resume_after_a_killed_job_gives_the_unbroken_output(fp32, tmp_path):
    folder, _ = fp32("text-classification")
    count, part_rows = 6000, 300
    source = write_table(tmp_path / "in.parquet", rows_of(count))
    arguments = ["--id-column", "id", "--part-rows", part_rows, "--on-error", "skip"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    target = tmp_path / "out.parquet"
    staging = tmp_path / ".out.parquet.partial"
    job = subprocess.Popen(_cli(folder, source, target, *arguments), env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(list(staging.glob("part-*.parquet"))) < 2 and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    job.send_signal(signal.SIGKILL)
    job.wait()
    done = len(list(staging.glob("part-*.parquet")))
    assert job.returncode == -signal.SIGKILL and not target.exists(), "the job ended before it could be killed"
    assert 2 <= done < count // part_rows

    again = subprocess.run(_cli(folder, source, target, *arguments), env=env, capture_output=True, text=True)
    assert again.returncode == 1 and "pass --resume to continue it" in again.stderr
    resumed = subprocess.run(_cli(folder, source, target, *arguments, "--resume"), env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"after {done * part_rows:,} rows done earlier" in resumed.stderr
    assert not staging.exists()

    unbroken = tmp_path / "unbroken.parquet"
    subprocess.run(_cli(folder, source, unbroken, *arguments), env=env, check=True, capture_output=True)
    got, want = read_output(target), read_output(unbroken)
    assert len(got) == count and [row["id"] for row in got] == [row["id"] for row in rows_of(count)]
    assert_close(got, want)


def test_resume_refuses_a_changed_job(cli, fp32, tmp_path):
    folder, _ = fp32("text-classification")
    source = write_table(tmp_path / "in.jsonl", rows_of(5))
    staging = tmp_path / ".out.jsonl.partial"
    staging.mkdir()
    (staging / "job.json").write_text(json.dumps({"input": "elsewhere"}))
    result = bulk(cli, folder, source, tmp_path / "out.jsonl", "--resume")
    assert result.exit_code == 1 and "cannot resume the interrupted job" in result.stderr


def test_parts_whose_lists_were_all_empty_join_the_typed_ones(tmp_path):
    """A part where a list column only held empty lists has no element type yet; the output still
    has one schema, and a chunk waits in its part until its types are known."""
    from distilbert_onnx.bulk import formats

    early = formats.ParquetPart(tmp_path / "a.parquet", {})
    early.write({"id": [1, 2], "result": [[], []]})
    early.close()
    late = formats.ParquetPart(tmp_path / "b.parquet", formats.written_types([tmp_path / "a.parquet"], "parquet"))
    late.write({"id": [3], "result": [[]]})
    late.write({"id": [4], "result": [[{"word": "Paris", "score": 0.5}]]})
    late.close()
    assert pq.ParquetFile(tmp_path / "b.parquet").metadata.num_row_groups == 2
    formats.concatenate([tmp_path / "a.parquet", tmp_path / "b.parquet"], tmp_path / "out.parquet", "parquet")
    assert pq.read_table(tmp_path / "out.parquet").to_pylist() == [
        {"id": 1, "result": []}, {"id": 2, "result": []}, {"id": 3, "result": []},
        {"id": 4, "result": [{"word": "Paris", "score": 0.5}]}]
