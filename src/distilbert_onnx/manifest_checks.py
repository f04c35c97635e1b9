"""The shape of a manifest read from disk: the keys the code relies on hold what it expects, and no
file a variant names lies outside its folder.

A manifest is data a user (or an attacker) may have edited: `"variants": "nope"` must be one error
naming the key, and `"file": "../../etc/passwd"` must never be hashed, validated or run.
"""

from __future__ import annotations

from pathlib import Path

from .errors import ArtifactError

ADVICE = "re-export the folder"


def check_shape(manifest: dict, path: Path) -> dict:
    """`manifest` when its keys have the expected types; an ArtifactError naming the first that has not."""
    _expect(manifest, "task", str, path)
    _expect(manifest, "variants", dict, path)
    for name, record in manifest["variants"].items():
        where = f"variants.{name}"
        if not isinstance(record, dict):
            raise _wrong(where, record, "an object", path)
        _plain_name(record.get("file"), f"{where}.file", path)
        if "sha256" in record and not isinstance(record["sha256"], str):
            raise _wrong(f"{where}.sha256", record["sha256"], "a string", path)
        if "weights" in record:
            weights = record["weights"]
            if not isinstance(weights, dict):
                raise _wrong(f"{where}.weights", weights, "an object", path)
            _plain_name(weights.get("file"), f"{where}.weights.file", path)
    if "auto_choice" in manifest and not isinstance(manifest["auto_choice"], dict):
        raise _wrong("auto_choice", manifest["auto_choice"], "an object", path)
    return manifest


def _expect(manifest: dict, key: str, kind: type, path: Path) -> None:
    if not isinstance(manifest.get(key), kind):
        raise _wrong(key, manifest.get(key), {str: "a string", dict: "an object"}[kind], path)


def _plain_name(value, where: str, path: Path) -> None:
    """A file name inside the folder: no folder part, no '..', not absolute."""
    if not isinstance(value, str):
        raise _wrong(where, value, "a file name", path)
    if value in ("", ".", "..") or Path(value).name != value or "\\" in value:
        raise ArtifactError(f"{path}: {where} is {value!r}, which points outside the folder; a manifest names files "
                            f"in its own folder only: {ADVICE}")


def _wrong(key: str, value, expected: str, path: Path) -> ArtifactError:
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    return ArtifactError(f"{path}: {key} is {shown}, expected {expected}: {ADVICE}")
