"""What decides a bulk job's results, so that --resume continues only the very same job.

A job is fingerprinted by the model files that run (the graph's sha256 as the manifest records it
and load() has checked it, the tokenizer and config files), the variant, backend and device, the
task's options, and the input's content (sha256 of its bytes: a file changed in place with its size
and mtime restored is a changed input). Hashing the input reads it once more at the start of a run,
at several hundred MB/s: a small cost beside scoring the rows. `changes` words the difference
between two fingerprints for the refusal.
"""

from __future__ import annotations

from pathlib import Path

from ..artifacts import CONFIG_NAME, TOKENIZER_NAME, sha256_file
from ..manifest import read_manifest
from ..runtime.integrity import file_sha256, variant_files
from ..variants import VARIANTS


def model_fingerprint(pipe) -> dict:
    """The model side of a job: folder, variant, backend, device and the sha256 of each file it reads."""
    folder = Path(pipe.folder).absolute()
    variant = VARIANTS[pipe.variant]
    files = {path.name: expected or file_sha256(path)
             for path, expected in variant_files(folder, variant, read_manifest(folder)).items()}
    for name in (TOKENIZER_NAME, CONFIG_NAME):
        if (folder / name).is_file():
            files[name] = sha256_file(folder / name)
    return {"folder": str(folder), "variant": pipe.variant, "backend": pipe.backend, "device": pipe.device,
            "files": files}


def input_fingerprint(path: Path) -> dict:
    return {"path": str(path.absolute()), "bytes": path.stat().st_size, "sha256": sha256_file(path)}


def changes(recorded: dict, current: dict) -> list[str]:
    """What differs between a recorded job and this one, in words."""
    said = []
    for key in sorted(set(recorded) | set(current)):
        old, new = recorded.get(key), current.get(key)
        if old == new:
            continue
        if key == "model" and isinstance(old, dict) and isinstance(new, dict):
            said += _model_changes(old, new)
        elif key == "input" and isinstance(old, dict) and isinstance(new, dict):
            said.append("the input is another file" if old.get("path") != new.get("path")
                        else "the input's content changed since the job started")
        else:
            said.append(f"{key} ({_brief(old)} then, {_brief(new)} now)")
    return said


def _model_changes(old: dict, new: dict) -> list[str]:
    said = [f"the model's {key} ({_brief(old.get(key))} then, {_brief(new.get(key))} now)"
            for key in ("folder", "variant", "backend", "device") if old.get(key) != new.get(key)]
    old_files, new_files = old.get("files") or {}, new.get("files") or {}
    changed = sorted(name for name in set(old_files) | set(new_files) if old_files.get(name) != new_files.get(name))
    if changed and not said:
        said.append(f"the model's {', '.join(changed)} changed (another sha256: the folder was re-exported or edited)")
    return said


def _brief(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
