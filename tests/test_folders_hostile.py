"""Deployable folders under faults and tampering: a changed byte in a graph is refused at load
(by sha256, remembered per user by size, mtime, ctime and inode), a manifest of the wrong shape or
naming a file outside its folder is one error naming the key, and the staging folder of an export
killed with SIGKILL is removed by the next run that targets the same place, while one a live
process holds is left alone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from runtime_helpers import one_error_line
from serve_helpers import SRC

import distilbert_onnx as dox
from distilbert_onnx.manifest import MANIFEST_NAME
from distilbert_onnx.errors import ArtifactError


@pytest.fixture
def folder(own_folder):
    """A private copy of the exported text-classification folder, with a private per-user cache."""
    return own_folder


def flip_a_byte(path: Path, keep_mtime: bool = False) -> None:
    stat = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    with open(path, "r+b") as handle:  # in place: same inode, same size
        handle.write(bytes(data))
    if keep_mtime:
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


# --- case 3: a changed model is refused ---------------------------------------------------------------


def test_a_flipped_byte_is_refused_by_load_predict_and_serve(cli, folder):
    assert dox.load(folder)("I love it")  # the intact folder loads
    flip_a_byte(folder / "model_quantized.onnx")
    with pytest.raises(ArtifactError, match=r"model_quantized\.onnx does not match the sha256 its manifest records"):
        dox.load(folder)
    assert "model_quantized.onnx does not match" in one_error_line(cli("predict", str(folder), "hi"))
    assert "model_quantized.onnx does not match" in one_error_line(cli("serve", str(folder), "--port", "0"))
    assert dox.load(folder, variant="fp32")("I love it")  # the other graphs are intact


def test_a_file_changed_in_place_with_its_mtime_restored_is_still_refused(folder, tmp_path):
    dox.load(folder, variant="fp32")
    cache = json.loads((tmp_path / "cache" / "verified.json").read_text())
    assert str((folder / "model.onnx").resolve()) in cache  # verified once, remembered
    dox.load(folder, variant="fp32")  # a warm load: only a stat
    flip_a_byte(folder / "model.onnx", keep_mtime=True)
    with pytest.raises(ArtifactError, match=r"model\.onnx does not match"):
        dox.load(folder, variant="fp32")


def test_a_graph_the_manifest_does_not_record_is_refused(folder):
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    del manifest["variants"]["quantized"]
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"model_quantized\.onnx is not recorded in .*manifest"):
        dox.load(folder, variant="quantized")


def test_an_optimum_folder_without_a_manifest_still_loads(folder):
    (folder / MANIFEST_NAME).unlink()
    assert dox.load(folder, variant="quantized")("I love it")


@pytest.mark.parametrize("edit, key", [
    (lambda manifest: manifest.update(variants="nope"), '"variants" should be an object of variant records, not "nope"'),
    (lambda manifest: manifest.update(task=["a"]), '"task" should be a task name'),
    (lambda manifest: manifest["variants"].update(quantized=3), '"variants"."quantized" should be an object'),
    (lambda manifest: manifest["variants"]["quantized"].update(file="../../../etc/passwd"),
     '"variants"."quantized"."file" is "../../../etc/passwd", which points outside the folder'),
    (lambda manifest: manifest["variants"]["fp32"].update(file="/etc/passwd"), "points outside the folder"),
])
def test_a_manifest_of_the_wrong_shape_is_one_error_naming_the_key(cli, folder, edit, key):
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    edit(manifest)
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="re-export the folder") as error:
        dox.load(folder)
    assert key in str(error.value)
    for command in (["predict", str(folder), "hi"], ["info", str(folder)], ["validate", str(folder)]):
        assert key in one_error_line(cli(*command)), command


# --- case 9: leftovers of a killed export -------------------------------------------------------------


HOLDER = """
import fcntl, os, sys, time
path = sys.argv[1]
os.mkdir(path)
fd = os.open(path, os.O_RDONLY)
fcntl.flock(fd, fcntl.LOCK_EX)
print("holding", flush=True)
time.sleep(300)
"""


@pytest.mark.slow
def test_the_next_run_removes_what_a_killed_export_left_but_not_a_live_ones(cli, checkpoints, tmp_path):
    target = tmp_path / "exported"
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    export = subprocess.Popen([sys.executable, "-m", "distilbert_onnx.cli", "export",
                               str(checkpoints["text-classification"]), str(target)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    live = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / ".exported.live.partial")],
                            stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not any(tmp_path.glob(".exported.*.partial/model.onnx")):
            assert export.poll() is None and time.monotonic() < deadline, "the export ended before it could be killed"
            time.sleep(0.05)
        os.killpg(export.pid, signal.SIGKILL)  # kill -9 of the job: the export and the int8 child it started
        export.wait()
        assert live.stdout.readline() == "holding\n"
        killed = [path for path in tmp_path.glob(".exported.*.partial") if path.name != ".exported.live.partial"]
        assert len(killed) == 1
        time.sleep(2.5)  # leftovers.SETTLE_SECONDS: a staging path unchanged that long is judged
        result = cli("demo-checkpoint", str(target))  # the next run that targets it
        assert result.exit_code == 0, result.output
        assert not killed[0].exists()
        assert (tmp_path / ".exported.live.partial").is_dir()  # a live process's: untouched
    finally:
        export.kill()
        live.kill()
        live.wait()


def test_the_next_bulk_run_removes_a_dead_writers_temporary_file(cli, exported, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "I love it"}\n')
    leftover = tmp_path / ".out.jsonl.k3x9.partial"  # a concatenation killed half-way
    leftover.write_text("half")
    os.utime(leftover, (time.time() - 60, time.time() - 60))
    result = cli("predict", str(exported["text-classification"]), "--input", str(source),
                                       "--output", str(tmp_path / "out.jsonl"))
    assert result.exit_code == 0, result.output
    assert not leftover.exists() and (tmp_path / "out.jsonl").is_file()
