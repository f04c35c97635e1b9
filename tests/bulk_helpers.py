"""Helpers shared by the bulk tests (test_bulk.py, test_bulk_ray.py): tables written and read in
every format, the bulk command, and result comparison."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from runtime_helpers import TEXTS


SCORE_ATOL = 1e-5
# A JSON Lines file with good rows, rows without a usable text and a line that is not JSON.
BAD_JSONL = [
    '{"id": 1, "text": "I love Paris."}',
    '{"id": 2, "text": null}',
    '{"id": 3}',
    '{"id": 4, "text": 5}',
    'not json',
    '{"id": 6, "text": "The battery died."}',
]


def write_table(path, rows: list[dict]):
    """`rows` as a table in the format `path` names."""
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    elif path.suffix == ".csv":
        pa_csv.write_csv(pa.Table.from_pylist(rows), path)
    else:
        pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=7)
    return path


def read_output(path) -> list[dict]:
    if path.is_dir():
        return [row for part in sorted(path.glob("part-*")) for row in read_output(part)]
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return pq.read_table(path).to_pylist()


def bulk(cli, folder, source, target, *arguments):
    return cli("predict", folder, "--input", source, "--output", target, "--variant", "fp32", *arguments)


def assert_ok(result):
    assert result.exit_code == 0, result.output
    return result


def assert_close(ours, expected, path="row"):
    """Equal structure and strings; floats within SCORE_ATOL."""
    if isinstance(expected, dict):
        assert list(ours) == list(expected), f"{path}: {list(ours)} != {list(expected)}"
        for key in expected:
            assert_close(ours[key], expected[key], f"{path}[{key!r}]")
    elif isinstance(expected, list):
        assert len(ours) == len(expected), f"{path}: {len(ours)} items, expected {len(expected)}"
        for index, (mine, want) in enumerate(zip(ours, expected)):
            assert_close(mine, want, f"{path}[{index}]")
    elif isinstance(expected, float):
        assert abs(ours - expected) <= SCORE_ATOL, f"{path}: {ours} != {expected}"
    else:
        assert ours == expected, f"{path}: {ours!r} != {expected!r}"


def rows_of(count: int) -> list[dict]:
    return [{"id": 100 + i, "text": TEXTS[i % len(TEXTS)] + f" #{i}", "lang": "en" if i % 2 else "fr", "n": i * 0.5}
            for i in range(count)]
