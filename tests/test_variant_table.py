"""The variant table drives what its rows name: each row's builder and check resolve to functions,
the opt-in rows give the export / optimize flags and keywords, and a new variant added as one row
plus its builder (tests/paper_variant.py: an ONNX fp16 graph for CPUs with AVX512-FP16) is made by
`optimize`, checked by `validate`, listed by `info`, and left out of auto where the CPU lacks its flag,
with no other file touched."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from distilbert_onnx.variants import FP16, OPT_IN, VARIANTS, opt_in_asked, pop_opt_in, resolve

TESTS = Path(__file__).parent


def test_every_row_names_a_builder_and_a_check_that_exist():
    for variant in VARIANTS.values():
        assert callable(resolve(variant.builder)), variant.name
        assert callable(resolve(variant.check)), variant.name


def test_the_opt_in_rows_give_the_keywords():
    assert OPT_IN == (FP16,)
    assert opt_in_asked(fp16=True) == (FP16,) and opt_in_asked(fp16=False) == ()
    options = {"fp16": True, "min_cosine": 0.9}
    assert pop_opt_in(options) == {"fp16": True} and options == {"min_cosine": 0.9}
    with pytest.raises(TypeError, match="unexpected keyword argument 'fp32'"):
        opt_in_asked(fp32=True)


def cli_with_paper_variant(*args) -> subprocess.CompletedProcess:
    """The CLI in a child process whose variant table has the paper exercise's row."""
    code = (f"import sys; sys.path.insert(0, {str(TESTS)!r}); import paper_variant; "
            "from distilbert_onnx.cli import main; main()")
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=600)


def test_a_new_variant_is_one_row_plus_its_builder(export_tiny, tmp_path):
    checkpoint, exported = export_tiny("text-classification")
    folder = tmp_path / "folder"
    shutil.copytree(exported, folder)

    helped = cli_with_paper_variant("optimize", "--help")
    assert "--fp16-cpu" in helped.stdout and "CPUs with AVX512-FP16" in helped.stdout

    made = cli_with_paper_variant("optimize", folder, "--fp16-cpu")
    assert made.returncode == 0, made.stderr
    assert (folder / "model_optimized_fp16_cpu.onnx").is_file() and not (folder / "model_optimized_fp16.onnx").exists()
    assert "validate model_optimized_fp16_cpu.onnx" in made.stderr
    record = json.loads((folder / "distilbert_onnx.json").read_text())["variants"]["fp16-cpu"]
    assert record["precision"] == "fp16" and record["validation"]["passed"]

    validated = cli_with_paper_variant("validate", folder)
    assert validated.returncode == 0, validated.stderr
    assert "model_optimized_fp16_cpu.onnx: max abs diff" in validated.stdout
    assert "model_optimized_fp16_cpu.onnx: present, sha256 matches" in validated.stdout

    assert "fp16-cpu" in cli_with_paper_variant("info", folder).stdout

    refused = cli_with_paper_variant("export", checkpoint, tmp_path / "out", "--no-optimize", "--fp16-cpu")
    assert refused.returncode == 1
    assert "the fp16-cpu graph is made from the fused one: --fp16-cpu cannot go with --no-optimize" in refused.stderr

    # auto's candidates: the new row only where the CPU has the flag it names.
    code = (f"import sys, json, pathlib; sys.path.insert(0, {str(TESTS)!r}); import paper_variant; "
            "from distilbert_onnx.manifest import require_manifest; "
            "from distilbert_onnx.runtime.choice import fidelity_candidates; from distilbert_onnx.runtime.machine import cpu_flags; "
            f"folder = pathlib.Path({str(folder)!r}); candidates, excluded = fidelity_candidates(folder, require_manifest(folder), 'auto'); "
            "print(json.dumps({'flag': 'avx512_fp16' in cpu_flags(), 'candidates': [v.name for v in candidates], 'excluded': excluded}))")
    chosen = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert chosen.returncode == 0, chosen.stderr
    auto = json.loads(chosen.stdout)
    if auto["flag"]:
        assert "fp16-cpu" in auto["candidates"]
    else:
        assert auto["excluded"]["fp16-cpu"] == "this CPU lacks avx512_fp16" and "fp16-cpu" not in auto["candidates"]
