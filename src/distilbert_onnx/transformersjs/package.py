"""`package(folder, out)`: an exported folder as transformers.js reads it.

transformers.js (`pipeline(task, name, {dtype, local_files_only: true})` with `env.localModelPath`)
reads config.json (model_type, id2label), tokenizer.json and tokenizer_config.json (model_max_length,
special tokens) from the model's folder, and the graph from `onnx/model{suffix}.onnx`, the suffix
given by `dtype`: "" for fp32, "_quantized" for q8 (its default on WASM). So the package holds:

    config.json  tokenizer.json  tokenizer_config.json  special_tokens_map.json
    onnx/model.onnx             fp32: the folder's model.onnx, validated against PyTorch
    onnx/model_quantized.onnx   q8: the folder's fidelity-gated int8 graph
    distilbert_onnx.json        the manifest, its variants' files pointing into onnx/, and a
                                `package` record: what went where, what was left out and why

Every graph is checked against the operators the web runtime has (operators.py). fp32 that uses
another operator is an error. An int8 graph that does is replaced by int8 quantized from the unfused
model.onnx (standard operators only), measured against fp32 by the same quantize step and to the same
target as the folder's own int8; where that is not possible the package says plainly that q8 is left
out. A folder without int8 gets `transformers.js_config.dtype = "fp32"` so that a page's default
(q8) does not ask for a file that is not there. The folder is built beside OUT and renamed at the end.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from ..artifacts import CONFIG_NAME, TOKENIZER_NAME, staged_folder
from ..errors import ArtifactError, OptionError, QuantizationError
from ..manifest import Manifest, require_manifest, write_manifest
from ..tasks import get_task
from ..variants import FP32, QUANTIZED
from .operators import CHECKED_WITH, WEB_CONTRIB_OPS, unsupported_operators

TARGETS = ("transformers.js",)
# transformers.js dtype -> this project's variant, and the suffix of its file onnx/model{suffix}.onnx.
DTYPES = {"fp32": FP32, "q8": QUANTIZED}
SUFFIXES = {"fp32": "", "q8": "_quantized"}
TEXT_FILES = (CONFIG_NAME, TOKENIZER_NAME, "tokenizer_config.json")
OPTIONAL_TEXT_FILES = ("special_tokens_map.json",)


def packaged_file(dtype: str) -> str:
    """Where transformers.js looks for the graph of `dtype`."""
    return f"onnx/model{SUFFIXES[dtype]}.onnx"


def package(folder: str | Path, out: str | Path, *, target: str = "transformers.js", force: bool = False,
            echo=None, contrib_ops: frozenset[str] = WEB_CONTRIB_OPS) -> dict:
    """Write OUT, a folder `target` loads as is, from the exported `folder`; returns the package record.

    `contrib_ops`: the com.microsoft operators the web runtime has (operators.py; tests narrow it)."""
    echo = echo or (lambda message: None)
    if target not in TARGETS:
        raise OptionError(f"unknown package target {target!r}: choose {', '.join(TARGETS)}")
    folder = Path(folder)
    manifest = require_manifest(folder)
    spec = get_task(manifest.task)
    if not spec.in_transformers_js:
        raise ArtifactError(f"transformers.js has no pipeline for {spec.name}: a {spec.name} folder cannot be packaged for it")
    missing = [name for name in (*TEXT_FILES, FP32.file) if not (folder / name).is_file()]
    if missing or not manifest.has(FP32):
        raise ArtifactError(f"{folder} lacks {', '.join(missing) or 'a manifest record of ' + FP32.file}: re-export it")
    lacking = unsupported_operators(folder / FP32.file, contrib_ops)
    if lacking:
        raise ArtifactError(f"{folder / FP32.file} uses {', '.join(lacking)}, which onnxruntime-web lacks: "
                            "it cannot go to transformers.js")
    with staged_folder(out, force) as staging:
        (staging / "onnx").mkdir()
        variants, left_out = {}, {}
        variants[FP32.name] = _copy_graph(folder, staging, "fp32", manifest.record(FP32).data)
        echo(f"fp32: {FP32.file} -> {packaged_file('fp32')}")
        int8 = _int8(folder, staging, manifest, contrib_ops, echo)
        if isinstance(int8, str):
            left_out["q8"] = int8
            echo(f"q8: left out: {int8}")
        else:
            variants[QUANTIZED.name] = int8
        _write_text_files(folder, staging, has_int8=QUANTIZED.name in variants)
        record = {
            "for": target,
            "from": str(folder.resolve()),
            "dtypes": {dtype: variant.name for dtype, variant in DTYPES.items() if variant.name in variants},
            "left_out": left_out,
            "operators_checked_with": CHECKED_WITH,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        packaged = {key: value for key, value in manifest.data.items() if key not in ("variants", "auto_choice")}
        write_manifest(staging, {**packaged, "variants": variants, "package": record})
    return record


def _copy_graph(folder: Path, staging: Path, dtype: str, record: dict, source: Path | None = None) -> dict:
    """Copy the variant's graph to where transformers.js reads `dtype`; its manifest entry, moved."""
    shutil.copyfile(source or folder / record["file"], staging / packaged_file(dtype))
    return {**record, "file": packaged_file(dtype)}


def _int8(folder: Path, staging: Path, manifest: Manifest, contrib_ops: frozenset[str], echo) -> dict | str:
    """Package the int8 graph that runs on the web: the folder's own, or one quantized from the
    unfused fp32 graph. Its manifest entry, or why q8 is left out."""
    if not manifest.has(QUANTIZED) or not (folder / QUANTIZED.file).is_file():
        return f"{folder} has no int8 graph (distilbert-onnx quantize {folder} adds one)"
    record = manifest.record(QUANTIZED).data
    lacking = unsupported_operators(folder / record["file"], contrib_ops)
    if not lacking:
        echo(f"q8: {record['file']} -> {packaged_file('q8')}")
        return _copy_graph(folder, staging, "q8", record)
    echo(f"q8: {record['file']} uses {', '.join(lacking)}, which onnxruntime-web lacks: "
         "quantizing the unfused model.onnx instead")
    with tempfile.TemporaryDirectory(prefix="int8-for-web-") as work:
        try:
            remade, path = _quantize_unfused(folder, manifest, Path(work), echo)
        except QuantizationError as exc:
            return f"{record['file']} uses {', '.join(lacking)}, which onnxruntime-web lacks, and int8 from model.onnx fails: {exc}"
        still = unsupported_operators(path, contrib_ops)
        if still:
            return f"{record['file']} and int8 from model.onnx use {', '.join(still)}, which onnxruntime-web lacks"
        remade = {**remade, "replaces": {"file": record["file"], "sha256": record["sha256"],
                                         "why": f"uses {', '.join(lacking)}, which onnxruntime-web lacks"}}
        return _copy_graph(folder, staging, "q8", remade, source=path)


def _quantize_unfused(folder: Path, manifest: Manifest, work: Path, echo) -> tuple[dict, Path]:
    """int8 from model.onnx alone, to the target (and on the calibration texts) the folder's int8 was
    made for, by this project's quantize step; its manifest entry and file."""
    from ..checks.quantize_settings import QuantizeSettings
    from ..onnx_build.quantize import quantize_folder
    from ..progress import Stages

    for name in (*TEXT_FILES, *OPTIONAL_TEXT_FILES, FP32.file):
        if (folder / name).is_file():
            shutil.copyfile(folder / name, work / name)
    write_manifest(work, {**manifest.data, "variants": {FP32.name: manifest.record(FP32).data}})
    int8 = manifest.record(QUANTIZED)
    quantization = int8.quantization or {}
    target = int8.target
    texts = quantization.get("calibration", {}).get("source")
    options = {**(target.binding if target else {}), "target": target is not None, "graph": "unfused",
               "per_channel": "per tensor" not in quantization.get("weights", ""),
               "calibration_texts": texts if texts and Path(texts).is_file() else None}
    settings = QuantizeSettings.from_options(**{key: value for key, value in options.items() if value is not None})
    record = quantize_folder(work, settings, stages=Stages(echo))
    return record, work / QUANTIZED.file


def _write_text_files(folder: Path, staging: Path, has_int8: bool) -> None:
    """config.json (with the default dtype where q8 is absent) and the tokenizer files."""
    for name in (*TEXT_FILES, *OPTIONAL_TEXT_FILES):
        if (folder / name).is_file():
            shutil.copyfile(folder / name, staging / name)
    config = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
    if config.get("model_type") != "distilbert":
        raise ArtifactError(f"{folder / CONFIG_NAME} has model_type {config.get('model_type')!r}, not 'distilbert': re-export the folder")
    if not has_int8:
        config["transformers.js_config"] = {**config.get("transformers.js_config", {}), "dtype": "fp32"}
        (staging / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
