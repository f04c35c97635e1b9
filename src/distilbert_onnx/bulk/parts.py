"""Where a bulk job's output is built: numbered parts in a folder beside the target, so an
interrupted job resumes from its last complete part and the target only appears when all is done.

An output named *.parquet or *.jsonl is one file; any other name is a folder of parts
(part-00000.parquet, ...). Either way the job writes into `.NAME.partial` beside it: part k holds the
results of input rows [k * part_rows, (k + 1) * part_rows), written as `part-k.EXT.tmp` and renamed
once complete (its bad rows, with --on-error skip, in `errors-k.jsonl`, written first), and
`job.json` records what the job is (fingerprint.py), so that --resume refuses to continue a
different one. At the end the parts become the target (concatenated into one file, or the folder
renamed). The staging folder is held (leftovers.py) while a job writes it, so a second job on the
same output is refused, and --force replaces only an earlier output (ownership.py).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from .. import leftovers
from ..artifacts import replace_folder, staged_file
from ..errors import ArtifactError, OptionError
from ..ownership import check_replaceable
from ..tables import readers
from . import formats
from .fingerprint import changes

JOB_FILE = "job.json"


@dataclass
class Output:
    """A job's target and the folder its parts are built in."""

    target: Path
    kind: str  # parquet | jsonl
    single_file: bool
    settings: dict
    part_rows: int
    protected: tuple = ()  # paths --force must never replace (the input)
    lock: int | None = None  # holds the staging folder while this process writes it (leftovers.py)

    @property
    def staging(self) -> Path:
        return self.target.parent / f".{self.target.name}.partial"

    @property
    def extension(self) -> str:
        return "." + self.kind

    def part(self, index: int) -> Path:
        return self.staging / f"part-{index:05d}{self.extension}"

    def errors(self, index: int) -> Path:
        return self.staging / f"errors-{index:05d}.jsonl"

    def complete_parts(self) -> list[Path]:
        return sorted(self.staging.glob(f"part-*{self.extension}"))


def plan_output(target: str | Path, folder_format: str | None, settings: dict, part_rows: int,
                protected=()) -> Output:
    """The Output for `target`: a file when it ends in .parquet / .jsonl, else a folder of parts in
    `folder_format` (default parquet)."""
    target = Path(target).absolute()
    kind = formats.OUTPUT_FORMATS.get(target.suffix.lower())
    if kind:
        if folder_format and folder_format != kind:
            raise OptionError(f"--format {folder_format} does not match the output's name {target.name}")
        return Output(target, kind, True, settings, part_rows, tuple(protected))
    if target.suffix.lower() in readers.INPUT_FORMATS:
        raise OptionError(f"cannot write {target.name}: name the output .parquet or .jsonl, or a folder for parts")
    return Output(target, folder_format or "parquet", False, settings, part_rows, tuple(protected))


def start(output: Output, resume: bool, force: bool) -> int:
    """Make the staging folder ready and hold it; the number of parts already complete (resume) or 0."""
    if output.target.exists() and not force:
        raise ArtifactError(f"{output.target} exists: pass --force to replace it, or choose another output")
    if output.target.exists() and output.single_file == output.target.is_dir():
        raise ArtifactError(f"{output.target} exists and is a {'folder' if output.target.is_dir() else 'file'}: "
                            "choose another output")
    check_replaceable(output.target, output.protected)
    staging = output.staging
    if staging.is_symlink():
        raise ArtifactError(f"{staging} is a symbolic link, not a job's parts folder: remove it")
    if staging.exists() and leftovers.held(staging):
        raise ArtifactError(f"another job is writing {output.target} now (its parts are in {staging}): "
                            "wait for it to end, or choose another output")
    output.target.parent.mkdir(parents=True, exist_ok=True)
    leftovers.clean_abandoned(output.target)
    if staging.exists():
        _hold(output)
        try:
            return _resume(output, resume)
        except BaseException:
            discard_lock(output)
            raise
    try:
        staging.mkdir()
    except FileExistsError:
        raise ArtifactError(f"another job is writing {output.target} now: wait for it to end, or choose another output") from None
    _hold(output)
    try:
        (staging / JOB_FILE).write_text(json.dumps(output.settings, indent=2, default=str) + "\n", encoding="utf-8")
    except OSError:
        discard(output)
        raise
    return 0


def _resume(output: Output, resume: bool) -> int:
    """The parts already complete in the staging folder of the same job; errors for another job."""
    staging = output.staging
    if not resume:
        raise ArtifactError(f"an interrupted job left its parts in {staging}: pass --resume to continue it, "
                            "or remove that folder to start again")
    changed = changes(_read_job(staging), _normalized(output.settings))
    if changed:
        raise OptionError(f"cannot resume the interrupted job in {staging}: {'; '.join(changed)}. Run it with "
                          "the same model, input and settings, or remove that folder to start again")
    for leftover in staging.glob("*.tmp"):
        leftover.unlink()
    return len(output.complete_parts())


def _hold(output: Output) -> None:
    try:
        output.lock = leftovers.hold(output.staging)
    except leftovers.Busy:
        raise ArtifactError(f"another job is writing {output.target} now: wait for it to end, or choose another output") from None


def discard_lock(output: Output) -> None:
    leftovers.release(output.lock)
    output.lock = None


def _normalized(settings: dict) -> dict:
    return json.loads(json.dumps(settings, default=str))


def _read_job(staging: Path) -> dict:
    try:
        recorded = json.loads((staging / JOB_FILE).read_text(encoding="utf-8"))
        if not isinstance(recorded, dict):
            raise ValueError("not an object")
        return recorded
    except (OSError, ValueError):
        raise ArtifactError(f"{staging} is not a job's parts folder (no readable {JOB_FILE}): remove it") from None


def finish(output: Output, errors_file: Path | None) -> None:
    """Turn the complete parts into the target, write the errors file, remove the staging folder."""
    staging = output.staging
    if errors_file is not None:
        with staged_file(errors_file.absolute()) as tmp:
            formats.concatenate(sorted(staging.glob("errors-*.jsonl")), tmp, "jsonl")
    if output.single_file:
        with staged_file(output.target) as tmp:
            formats.concatenate(output.complete_parts(), tmp, output.kind)
        shutil.rmtree(staging)
        discard_lock(output)
        return
    for path in [staging / JOB_FILE, *staging.glob("errors-*.jsonl")]:
        path.unlink()
    replace_folder(staging, output.target)
    discard_lock(output)


def discard(output: Output) -> None:
    shutil.rmtree(output.staging, ignore_errors=True)
    discard_lock(output)
