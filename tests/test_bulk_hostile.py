"""Bulk jobs under a clumsy or hostile user, with real files and processes: --force never deletes
what the tool did not write, --resume refuses a changed job (model, input content, variant), a damaged
Parquet page, a full disk (a real small tmpfs) and impossible output paths are one `Error:` line with
nothing left behind, bad CSV rows are bad rows, and two jobs never write one output at once."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from runtime_helpers import TEXTS, one_error_line
from serve_helpers import SRC

import distilbert_onnx as dox
from distilbert_onnx.errors import OptionError


@pytest.fixture
def folder(own_folder):
    """A private copy of the exported text-classification folder, with a private per-user cache."""
    return own_folder


def texts(count: int, width: int = 1) -> list[str]:
    return [(TEXTS[i % len(TEXTS)] + f" #{i}. ") * width for i in range(count)]


def predict(cli, folder, source, target, *arguments):
    return cli("predict", folder, "--input", source, "--output", target, *arguments)


def leftovers(where: Path) -> list[str]:
    return sorted(path.name for path in where.iterdir() if ".partial" in path.name or path.name.endswith(".old"))


# --- case 1: --force -----------------------------------------------------------------------------


def test_force_never_deletes_a_folder_the_tool_did_not_write(cli, folder, tmp_path, monkeypatch):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.txt").write_text("years of work")
    source = mine / "in.csv"
    source.write_text("text\nI love it\n")
    line = one_error_line(predict(cli, folder, source, mine, "--force"))
    assert "did not write" in line or "holds" in line
    assert sorted(path.name for path in mine.iterdir()) == ["in.csv", "thesis.txt"]
    # the input inside the output folder is protected even when nothing else is there
    (mine / "thesis.txt").unlink()
    assert "holds" in one_error_line(predict(cli, folder, source, mine, "--force"))
    assert source.read_text() == "text\nI love it\n"
    # the working directory is never replaced
    monkeypatch.chdir(mine)
    assert "working directory" in one_error_line(predict(cli, folder, source, ".", "--force"))
    assert source.is_file()


def test_force_replaces_an_earlier_output_but_never_the_input(cli, folder, tmp_path):
    source = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": texts(30)}), source)
    target = tmp_path / "scored"
    assert predict(cli, folder, source, target, "--part-rows", 10).exit_code == 0
    assert predict(cli, folder, source, target, "--part-rows", 15, "--force").exit_code == 0
    assert sorted(path.name for path in target.iterdir()) == ["part-00000.parquet", "part-00001.parquet"]
    before = source.read_bytes()
    same = tmp_path / "in.parquet"
    assert "cannot be replaced" in one_error_line(predict(cli, folder, source, same, "--force"))
    assert "is the input or the output" in one_error_line(
        predict(cli, folder, source, tmp_path / "out.parquet", "--on-error", "skip", "--errors", source))
    assert source.read_bytes() == before


def test_export_force_never_replaces_user_files_or_the_checkpoint(cli, checkpoints, tmp_path):
    target = tmp_path / "taken"
    target.mkdir()
    (target / "notes.md").write_text("mine")
    result = cli("export", str(checkpoints["text-classification"]), str(target), "--force")
    assert "did not write (e.g. notes.md)" in one_error_line(result)
    checkpoint = tmp_path / "checkpoint"
    shutil.copytree(checkpoints["text-classification"], checkpoint)
    result = cli("export", str(checkpoint), str(checkpoint), "--force")
    assert "cannot be replaced" in one_error_line(result) or "did not write" in one_error_line(result)
    assert (target / "notes.md").read_text() == "mine" and (checkpoint / "config.json").is_file()


# --- case 2: --resume of a changed job ------------------------------------------------------------


def interrupted_job(folder, source, target, **options):
    """Run a job and stop it with Ctrl-C (KeyboardInterrupt) once its first part is written."""
    def progress(rows, total):
        if rows >= 25:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        dox.bulk.predict_file(folder, source, target, part_rows=10, batch_size=4, progress=progress, **options)
    assert (target.parent / f".{target.name}.partial" / "part-00000.parquet").is_file()


def test_resume_refuses_a_re_exported_model(cli, folder, export_tiny, tmp_path):
    source = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": texts(40)}), source)
    target = tmp_path / "out.parquet"
    interrupted_job(folder, source, target, variant="fp32")
    _, other = export_tiny("text-classification", seed=21)  # the folder re-exported from another checkpoint
    shutil.rmtree(folder)
    shutil.copytree(other, folder)
    with pytest.raises(OptionError, match=r"the model's model\.onnx changed"):
        dox.bulk.predict_file(folder, source, target, part_rows=10, batch_size=4, variant="fp32", resume=True)
    line = one_error_line(predict(cli, folder, source, target, "--variant", "fp32", "--part-rows", 10,
                                  "--resume"))
    assert "cannot resume" in line and "model.onnx changed" in line


def test_resume_refuses_another_variant(folder, tmp_path):
    source = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": texts(40)}), source)
    target = tmp_path / "out.parquet"
    interrupted_job(folder, source, target, variant="quantized")
    with pytest.raises(OptionError, match=r"variant \('quantized' then, 'fp32' now\)"):
        dox.bulk.predict_file(folder, source, target, part_rows=10, batch_size=4, variant="fp32", resume=True)


def test_resume_refuses_an_input_changed_in_place_with_its_mtime_restored(folder, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"text": text}) + "\n" for text in texts(40)))
    target = tmp_path / "out.parquet"
    interrupted_job(folder, source, target, variant="fp32")
    stat = source.stat()
    data = bytearray(source.read_bytes())
    data[data.index(b"#3")] = ord("%")  # same size
    source.write_bytes(bytes(data))
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.raises(OptionError, match="the input's content changed"):
        dox.bulk.predict_file(folder, source, target, part_rows=10, batch_size=4, variant="fp32", resume=True)
    source.write_bytes(bytes(data).replace(b"%", b"#", 1))  # back as it was: the same job resumes
    summary = dox.bulk.predict_file(folder, source, target, part_rows=10, batch_size=4, variant="fp32", resume=True)
    assert summary.resumed_rows >= 10 and pq.read_table(target).num_rows == 40


# --- case 7: damaged input, full disk, impossible outputs ---------------------------------------------


def test_a_damaged_parquet_page_is_one_error_line_and_leaves_nothing(cli, folder, tmp_path):
    source = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": texts(3000)}), source, compression="none", row_group_size=1000)
    data = bytearray(source.read_bytes())
    at = data.index(b"#2500.")
    data[at : at + 300] = b"\xff" * 300
    source.write_bytes(bytes(data))
    line = one_error_line(predict(cli, folder, source, tmp_path / "out.parquet", "--part-rows", 500))
    assert "cannot read in.parquet" in line and "damaged" in line
    assert leftovers(tmp_path) == [] and not (tmp_path / "out.parquet").exists()


@pytest.fixture
def tiny_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("mounting a small tmpfs needs root (a real full disk)")
    yield disk
    if subprocess.run(["umount", str(disk)]).returncode:  # busy: a file left open by the code under test
        subprocess.run(["umount", "-l", str(disk)], check=True)
        pytest.fail("a file on the full disk was left open")


def test_a_full_disk_is_one_error_line_and_leaves_nothing(cli, folder, tmp_path, tiny_disk):
    source = tmp_path / "in.parquet"
    noise = [os.urandom(200).hex() for _ in range(200)]  # 80 kB that does not compress, kept in the output
    pq.write_table(pa.table({"text": ["I love it"] * 200, "blob": noise}), source)
    for target in (tiny_disk / "out.parquet", tiny_disk / "parts", tiny_disk / "out.jsonl"):
        line = one_error_line(predict(cli, folder, source, target, "--keep-columns", "blob", "--part-rows", 100))
        assert "No space left on device" in line, line
        assert list(tiny_disk.iterdir()) == []


@pytest.mark.parametrize("where", ["under a file", "/proc"])
def test_an_impossible_output_path_is_one_error_line(cli, folder, tmp_path, where):
    source = tmp_path / "in.csv"
    source.write_text("text\nI love it\n")
    (tmp_path / "a-file").write_text("x")
    target = tmp_path / "a-file" / "out.parquet" if where == "under a file" else Path("/proc/out.parquet")
    line = one_error_line(predict(cli, folder, source, target))
    assert "is a file, not a folder" in line or "/proc" in line


# --- case 8: CSV rows -------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_bad_csv_row_is_a_bad_row_named_by_number(cli, folder, tmp_path):
    raw = [f'{i},"{text}"'.encode() for i, text in enumerate(texts(3000))]
    raw[1200] = b'1200,"an unterminated quote runs on'
    raw[2500] = b"2500,caf\xe9 in latin-1"
    source = tmp_path / "in.csv"
    source.write_bytes(b"id,text\n" + b"\n".join(raw) + b"\n")
    result = predict(cli, folder, source, tmp_path / "out.parquet", "--id-column", "id", "--on-error", "skip",
                     "--variant", "fp32")
    assert result.exit_code == 0, result.output
    ids = pq.read_table(tmp_path / "out.parquet").column("id").to_pylist()
    assert ids == [i for i in range(3000) if i not in (1200, 2500)]  # the rows after the quote are their own
    errors = [json.loads(line) for line in (tmp_path / "out.parquet.errors.jsonl").read_text().splitlines()]
    assert [error["row"] for error in errors] == [1201, 2501]
    assert "not valid CSV" in errors[0]["error"] and "not UTF-8" in errors[1]["error"]
    failed = predict(cli, folder, source, tmp_path / "again.parquet", "--variant", "fp32")
    assert "row 1201" in one_error_line(failed)


# --- two jobs, one output ---------------------------------------------------------------------------


def test_two_jobs_never_write_one_output_at_once(cli, folder, tmp_path):
    source = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": texts(20_000)}), source)
    target = tmp_path / "out.parquet"
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    first = subprocess.Popen([sys.executable, "-m", "distilbert_onnx.cli", "predict", str(folder), "--input", str(source),
                              "--output", str(target), "--part-rows", "100", "--threads", "1"],
                             stderr=subprocess.PIPE, text=True, env=env)
    try:
        staging = tmp_path / ".out.parquet.partial"
        deadline = time.monotonic() + 60
        while not (staging / "part-00000.parquet").exists():
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        for extra in ([], ["--resume"], ["--force"]):
            assert "another job is writing" in one_error_line(predict(cli, folder, source, target, *extra))
        first.send_signal(signal.SIGKILL)
        first.wait()
        # the first job is dead: its parts stay for --resume, never removed behind the user's back
        assert "interrupted job" in one_error_line(predict(cli, folder, source, target))
        assert (staging / "part-00000.parquet").is_file()
    finally:
        first.kill()
