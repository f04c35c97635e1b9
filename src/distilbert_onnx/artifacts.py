"""The deployable folder's plain files: JSON reading, checksums and atomic writes.

A folder holds one task's graphs (variants.py names them), config.json, the tokenizer files and the
manifest (manifest.py). Everything here is written atomically: a whole folder is built beside its
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
from pathlib import Path

from . import leftovers
from .errors import ArtifactError
from .ownership import check_replaceable

CONFIG_NAME = "config.json"
TOKENIZER_NAME = "tokenizer.json"


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
    replace_folder(staging, target)
    leftovers.release(lock)


def replace_folder(staging: Path, target: Path) -> None:
    """Put the finished folder `staging` at `target`, replacing a folder there (moved aside, then removed)."""
    if target.exists():
        retired = staging.with_suffix(".old")
        os.replace(target, retired)
        os.replace(staging, target)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(staging, target)


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
