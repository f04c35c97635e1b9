"""The deployable folder: its file names, the manifest, atomic writes, and the choice of variant.

A folder holds one task's graphs (fp32, fused, int8, fp16), config.json, the tokenizer files and the
manifest `distilbert_onnx.json`. File names follow Optimum's, so Optimum's export folders (which have
no manifest) load too. Everything here is written atomically: a whole folder is built beside its
target and renamed at the end, a single file is written under a temporary name and renamed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from . import leftovers
from .errors import ArtifactError, DeviceError
from .manifest_checks import check_shape
from .ownership import check_replaceable

MANIFEST_NAME = "distilbert_onnx.json"
FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
TOKENIZER_NAME = "tokenizer.json"
DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class Variant:
    """One graph of the folder: its name in the API, its file, where it may run, and on what.

    An OpenVINO variant's `file` is its IR's .xml; the weights are the .bin of the same name.
    """

    name: str
    file: str
    precision: str
    devices: tuple[str, ...]
    backend: str = "onnxruntime"


VARIANTS: dict[str, Variant] = {
    variant.name: variant
    for variant in (
        Variant("fp32", "model.onnx", "fp32", ("cpu", "cuda")),
        Variant("optimized", "model_optimized.onnx", "fp32", ("cpu", "cuda")),
        Variant("quantized", "model_quantized.onnx", "int8", ("cpu",)),
        Variant("fp16", "model_optimized_fp16.onnx", "fp16", ("cuda",)),
        Variant("openvino", "openvino_model.xml", "fp32", ("cpu",), backend="openvino"),
        Variant("openvino-int8", "openvino_model_int8.xml", "int8", ("cpu",), backend="openvino"),
    )
}
# The runtimes a variant runs on; "auto" in load() means whichever runs the chosen variant.
BACKENDS = ("auto", "onnxruntime", "openvino")
# variant="auto" with onnxruntime only: the first of these the folder has, per device.
AUTO_PREFERENCE = {"cpu": ("quantized", "optimized", "fp32"), "cuda": ("fp16", "optimized", "fp32")}


def choose_variant(folder: str | Path, device: str, variant: str = "auto") -> Variant:
    """The variant to run on `device`: as asked, or by AUTO_PREFERENCE; clear errors otherwise."""
    folder = Path(folder)
    if device not in DEVICES:
        raise DeviceError(f"unknown device {device!r}: choose cpu or cuda")
    if variant == "auto":
        for name in AUTO_PREFERENCE[device]:
            if (folder / VARIANTS[name].file).is_file():
                return VARIANTS[name]
        raise ArtifactError(f"{folder} holds no ONNX model for {device} (looked for {_files(AUTO_PREFERENCE[device])})")
    if variant not in VARIANTS:
        raise ArtifactError(f"unknown variant {variant!r}: choose auto, {', '.join(VARIANTS)}")
    chosen = VARIANTS[variant]
    if device not in chosen.devices:
        raise DeviceError(_wrong_device(chosen, device))
    if not (folder / chosen.file).is_file():
        raise ArtifactError(f"{folder} has no {variant} variant ({chosen.file}); {_how_to_make(chosen)}")
    return chosen


def _wrong_device(variant: Variant, device: str) -> str:
    if variant.backend == "openvino":
        return (f"the {variant.name} variant runs on OpenVINO's CPU plugin only, not {device}: "
                "use device cpu, or a variant onnxruntime runs on CUDA (fp16, optimized, fp32)")
    if variant.name == "quantized":
        return (
            "the int8 (quantized) graph cannot run on CUDA: onnxruntime has no CUDA kernels for its dynamic "
            "int8 ops; use variant fp16, optimized or fp32 on CUDA, or device cpu"
        )
    return f"the {variant.name} graph is built for {', '.join(variant.devices)}, not {device}: choose another variant"


def _how_to_make(variant: Variant) -> str:
    if variant.name == "quantized":
        return "make it with: distilbert-onnx quantize DIR"
    if variant.name == "fp16":
        return "make it with: distilbert-onnx optimize DIR --fp16"
    if variant.name == "optimized":
        return "make it with: distilbert-onnx optimize DIR"
    if variant.backend == "openvino":
        return "make it with: distilbert-onnx openvino DIR (needs the [openvino] extra)"
    return "re-export the checkpoint"


def _files(names: tuple[str, ...]) -> str:
    return ", ".join(VARIANTS[name].file for name in names)


# --- manifest ---------------------------------------------------------------------------------


def read_manifest(folder: str | Path) -> dict | None:
    """The folder's manifest, or None for a folder without one (an Optimum export)."""
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        return None
    manifest = load_json(path, ArtifactError, "re-export the folder")
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{path} is not a format-{FORMAT_VERSION} distilbert-onnx manifest: re-export the folder"
        )
    return check_shape(manifest, path)


def load_json(path: Path, error: type[Exception] = ArtifactError, advice: str = ""):
    """The JSON value in the file at `path`; `error` (with `advice` after it) when it is not valid JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"{path} is not valid JSON ({exc})" + (f": {advice}" if advice else "")) from None


def read_json(path: Path, error: type[Exception] = ArtifactError) -> dict:
    """A JSON object file as a dict, {} when there is no file (or it holds no object); `error` when
    it is not valid JSON."""
    if not path.is_file():
        return {}
    data = load_json(path, error)
    return data if isinstance(data, dict) else {}


def write_manifest(folder: str | Path, manifest: dict) -> None:
    """Write the manifest atomically."""
    with staged_file(Path(folder) / MANIFEST_NAME) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def require_manifest(folder: str | Path) -> dict:
    """The manifest of a distilbert-onnx folder; a clear error for anything else."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ArtifactError(f"no folder at {folder}")
    manifest = read_manifest(folder)
    if manifest is None:
        raise ArtifactError(
            f"{folder} has no {MANIFEST_NAME}: it is not a distilbert-onnx export (make one with distilbert-onnx export)"
        )
    return manifest


def variant_record(folder: str | Path, variant: Variant, **details) -> dict:
    """The manifest entry of a variant's graph: file, precision, sha256, size, then `details`."""
    path = Path(folder) / variant.file
    return {
        "file": variant.file,
        "precision": variant.precision,
        "sha256": sha256_file(path),
        "size_bytes": path.stat().st_size,
        **details,
    }


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


# --- atomic writes ----------------------------------------------------------------------------


def check_target(target: str | Path, force: bool, protected=()) -> Path:
    """Fail early when `target` is a file, or a non-empty folder and `force` is not set, or a folder
    `force` may not replace (ownership.py: not an earlier output of ours, or one holding the working
    directory or a `protected` path)."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise ArtifactError(f"{target} exists and is not a folder: choose another output path")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise ArtifactError(f"{target} exists and is not empty: pass --force to replace it, or choose another path")
    check_replaceable(target, protected)
    return target


@contextlib.contextmanager
def staged_folder(target: str | Path, force: bool = False, protected=()) -> Iterator[Path]:
    """Build a folder in a temporary sibling of `target`; rename it into place only on success.

    On any error the temporary folder is removed and an existing `target` is left untouched. The
    temporary folder is held (leftovers.py) while it is built; those of dead processes are removed.
    """
    target = check_target(target, force, protected).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    leftovers.clean_abandoned(target)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    lock = leftovers.hold(staging)
    staging.chmod(0o755)  # mkdtemp makes it private; the result is an ordinary folder
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        leftovers.release(lock)
        raise
    if target.exists():
        retired = staging.with_suffix(".old")
        os.replace(target, retired)
        os.replace(staging, target)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(staging, target)
    leftovers.release(lock)


@contextlib.contextmanager
def staged_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; replace `path` with it only if the block succeeds."""
    path = Path(path)
    leftovers.clean_abandoned(path)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(handle)
    tmp = Path(name)
    lock = leftovers.hold(tmp)
    tmp.chmod(0o644)  # mkstemp makes it private; the result is an ordinary file
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        leftovers.release(lock)
