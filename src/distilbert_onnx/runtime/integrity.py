"""Load-time integrity: the files a load is about to run must have the sha256 the manifest records.

A changed byte in a graph changes every answer, so `load()` (and everything on it: predict, serve,
bulk jobs, the auto choice's timings) refuses a file whose sha256 differs from its manifest record,
naming the file. Hashing a graph costs its size in bytes read once (67 MB for DistilBERT's int8 graph,
265 MB for fp32), so a file found intact is remembered in the per-user cache
(`cache_root()/verified.json`) by its path, size, mtime, ctime, inode and device: a later load of the
same, untouched file only stats it. A write to the file changes its ctime, which no user can set back,
so a file changed in place is hashed again. Folders without a manifest (Optimum's exports) record no
sha256 and load unchecked.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from ..artifacts import read_json, sha256_file, staged_file
from ..errors import ArtifactError
from ..manifest import Manifest
from ..variants import Variant
from .openvino_model import cache_root
from .session import logger

VERIFIED_FILE = "verified.json"
MAX_ENTRIES = 512  # files remembered; the oldest are forgotten first
_LOCK = threading.Lock()


def variant_files(folder: Path, variant: Variant, manifest: Manifest | None) -> dict[Path, str | None]:
    """The files running `variant` reads, with the sha256 the manifest records for each (None: no
    manifest, so nothing to check against)."""
    if manifest is None:
        return {folder / name: None for name in (variant.file, variant.weights) if name}
    record = manifest.record(variant)
    if record is None:
        raise ArtifactError(f"{folder / variant.file} is not recorded in {folder}'s manifest, so its sha256 cannot be "
                            "checked: re-export the folder, or remake the variant with distilbert-onnx")
    if record.data.get("file") != variant.file:
        raise ArtifactError(f"{folder}'s manifest records the {variant.name} variant as {record.data.get('file')!r}, "
                            f"not {variant.file}: re-export the folder")
    files = {folder / variant.file: record.sha256}
    if variant.weights:
        files[folder / variant.weights] = (record.data.get("weights") or {}).get("sha256")
    return files


def verify_variant(folder: Path, variant: Variant, manifest: Manifest | None) -> None:
    """Nothing when every file of `variant` has its recorded sha256; an ArtifactError naming the first
    file that does not."""
    for path, expected in variant_files(folder, variant, manifest).items():
        if expected is None:
            if manifest is not None:
                raise ArtifactError(f"{folder}'s manifest records no sha256 for {path.name}: re-export the folder")
            continue
        if file_sha256(path) != expected:
            raise ArtifactError(f"{path} does not match the sha256 its manifest records: the file changed after export "
                                "(`distilbert-onnx validate DIR` says which files); re-export the folder")


def file_sha256(path: Path) -> str:
    """The sha256 of the file at `path`, hashed only when the per-user cache has no entry for it as it
    is now (same size, mtime, ctime, inode and device)."""
    try:
        stat = path.stat()
    except OSError:
        raise ArtifactError(f"no model file at {path}") from None
    key = str(path.resolve())
    state = [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino, stat.st_dev]
    entry = _read().get(key)
    if isinstance(entry, dict) and entry.get("stat") == state and isinstance(entry.get("sha256"), str):
        return entry["sha256"]
    digest = sha256_file(path)
    _remember(key, {"stat": state, "sha256": digest})
    return digest


def _read() -> dict:
    try:
        return read_json(cache_root() / VERIFIED_FILE, error=ValueError)
    except (ValueError, OSError):
        return {}  # unreadable: hashed again and rewritten


def _remember(key: str, entry: dict) -> None:
    path = cache_root() / VERIFIED_FILE
    with _LOCK:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            entries = {name: value for name, value in _read().items() if name != key}
            entries = dict(list(entries.items())[-(MAX_ENTRIES - 1):])
            entries[key] = entry
            with staged_file(path) as tmp:
                tmp.write_text(json.dumps(entries) + "\n", encoding="utf-8")
        except OSError as exc:
            logger.warning("could not remember a verified file in %s (%s): the next load hashes it again", path, exc)
