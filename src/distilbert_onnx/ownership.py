"""What `--force` may replace: only an earlier output of this tool, never the user's own files.

An output folder is ours when it holds the manifest (an export), the marker file written into the
other folders this package makes (demo checkpoints), or only numbered parts (part-00000.parquet, ...:
a bulk job's folder output, which readers take whole, so it gets no marker). An empty folder may be used. A
folder holding the working directory, the job's input or any other path the caller protects is never
replaced, nor is a file that is one of those paths (output == input).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .errors import ArtifactError

MARKER = ".distilbert-onnx-output"
MANIFEST_NAME = "distilbert_onnx.json"  # artifacts.MANIFEST_NAME, repeated so this module stays at the root
_PART = re.compile(r"part-\d{5}\.(parquet|jsonl)")


def mark(folder: str | Path, kind: str) -> None:
    """Record in `folder` that this package wrote it (what `kind` of output it is)."""
    (Path(folder) / MARKER).write_text(json.dumps({"written_by": "distilbert-onnx", "kind": kind}) + "\n",
                                       encoding="utf-8")


def is_ours(folder: Path) -> bool:
    names = [path.name for path in folder.iterdir()]
    return MARKER in names or MANIFEST_NAME in names or (bool(names) and all(_PART.fullmatch(name) for name in names))


def check_parent(target: str | Path) -> None:
    """An ArtifactError when the folder `target` would go in cannot exist: part of its path is a file."""
    for folder in Path(target).absolute().parents:
        if folder.exists():
            if not folder.is_dir():
                raise ArtifactError(f"cannot write {target}: {folder} is a file, not a folder; choose another output")
            return


def check_replaceable(target: str | Path, protected=()) -> None:
    """Nothing when `target` may be replaced by a new output; an ArtifactError saying why not otherwise."""
    target = Path(target).absolute()
    check_parent(target)
    if not target.exists() and not target.is_symlink():
        return
    real = target.resolve()
    for path in (Path.cwd(), *protected):
        path = Path(path).resolve()
        if path == real or real in path.parents:
            what = "the working directory" if path == Path.cwd().resolve() else str(path)
            raise ArtifactError(f"{target} holds {what}: it cannot be replaced; choose another output")
    if real.is_dir() and any(real.iterdir()) and not is_ours(real):
        example = sorted(path.name for path in real.iterdir())[0]
        raise ArtifactError(f"{target} holds files distilbert-onnx did not write (e.g. {example}): --force only "
                            "replaces an earlier output of distilbert-onnx; choose another output, or move them away")
