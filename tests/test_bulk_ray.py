"""The Ray engine on a real local cluster with 2 actors of 1 CPU: the same output, order and bad-row
handling as the local engine, and `predict_dataset` for users' own Ray pipelines.
Deselect with `-m "not ray"`.

The cluster has 3 logical CPUs on this 2-core machine: 2 for the actors and 1 for Ray Data's file
listing task, which always asks for a whole CPU (with 2, it waits for ever behind the actors)."""

from __future__ import annotations

import json

import pytest

ray = pytest.importorskip("ray")
import ray.data  # noqa: E402
from bulk_helpers import BAD_JSONL, assert_close, assert_ok, bulk, read_output, rows_of, write_table  # noqa: E402

import distilbert_onnx as dox  # noqa: E402

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def cluster():
    """One local Ray cluster for the module (starting one takes seconds)."""
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


RAY = ["--engine", "ray", "--workers", 2, "--threads-per-worker", 1]


@pytest.mark.slow
@pytest.mark.parametrize("source_name, count", [("in.parquet", 1500), ("in.csv", 300), ("in.jsonl", 300)])
def test_ray_engine_gives_the_local_output(cluster, cli, exported, tmp_path, source_name, count):
    """1,500 rows are 3 blocks of 512 for 2 actors; output in input order all the same."""
    folder = exported["text-classification"]
    source = write_table(tmp_path / source_name, rows_of(count))
    options = ["--id-column", "id", "--keep-columns", "lang,n", "--part-rows", 400]
    assert_ok(bulk(cli, folder, source, tmp_path / "local.parquet", *options))
    result = assert_ok(bulk(cli, folder, source, tmp_path / "ray.parquet", *options, *RAY))
    assert f"{count:,} rows" in result.stderr
    local, distributed = read_output(tmp_path / "local.parquet"), read_output(tmp_path / "ray.parquet")
    assert [row["id"] for row in distributed] == [row["id"] for row in rows_of(count)]
    assert_close(distributed, local)
    assert pytest.importorskip("pyarrow.parquet").read_schema(tmp_path / "ray.parquet") == \
        pytest.importorskip("pyarrow.parquet").read_schema(tmp_path / "local.parquet")


@pytest.mark.slow
def test_ray_engine_bad_rows_as_local(cluster, cli, exported, tmp_path):
    folder = exported["text-classification"]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(BAD_JSONL) + "\n", encoding="utf-8")
    for engine in ("local", "ray"):
        extra = RAY if engine == "ray" else []
        assert_ok(bulk(cli, folder, source, tmp_path / f"{engine}.jsonl", "--id-column", "id", "--on-error", "skip",
                       *extra))
        failed = bulk(cli, folder, source, tmp_path / f"{engine}-fail.jsonl", *extra)
        assert failed.exit_code == 1 and "Error: in.jsonl row 2, column 'text': missing value" in failed.stderr
    assert_close(read_output(tmp_path / "ray.jsonl"), read_output(tmp_path / "local.jsonl"))
    local_errors = (tmp_path / "local.jsonl.errors.jsonl").read_text()
    ray_errors = (tmp_path / "ray.jsonl.errors.jsonl").read_text().replace("line 5 is not JSON", "")
    assert [json.loads(line)["row"] for line in ray_errors.splitlines()] == [2, 3, 4, 5]
    assert [json.loads(line)["column"] for line in ray_errors.splitlines()] == \
        [json.loads(line)["column"] for line in local_errors.splitlines()]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["in.jsonl", "local.jsonl", "local.jsonl.errors.jsonl", "ray.jsonl", "ray.jsonl.errors.jsonl"])


def test_predict_dataset_takes_and_gives_a_dataset(cluster, exported):
    folder = exported["question-answering"]
    pipe = dox.load(folder)
    rows = [{"q": "Where does Maria live?", "doc": text, "k": i} for i, text in enumerate(
        ["Maria Gonzalez lives in Paris.", "John Smith flew from New York to London.", "Rome is in Italy."] * 20)]
    ds = ray.data.from_items(rows)
    scored = dox.bulk.predict_dataset(ds, folder, columns={"question": "q", "context": "doc"}, workers=2)
    assert isinstance(scored, ray.data.Dataset)
    got = sorted(scored.take_all(), key=lambda row: row["k"])
    expected = pipe([{"question": r["q"], "context": r["doc"]} for r in rows])
    assert [sorted(row) for row in got] == [sorted(["q", "doc", "k", "score", "start", "end", "answer"])] * len(rows)
    assert [row["answer"] for row in got] == [want["answer"] for want in expected]


@pytest.mark.slow
def test_predict_dataset_marks_or_refuses_bad_rows(cluster, exported):
    folder = exported["text-classification"]
    ds = ray.data.from_items([{"text": "I love Paris."}, {"text": None}, {"text": "Fine."}])
    marked = dox.bulk.predict_dataset(ds, folder, on_error="skip").take_all()
    assert [row["error"] for row in marked] == [None, "missing value", None]
    assert marked[1]["label"] is None and marked[0]["label"] is not None
    with pytest.raises(Exception, match="column 'text': missing value"):
        dox.bulk.predict_dataset(ds, folder).take_all()
