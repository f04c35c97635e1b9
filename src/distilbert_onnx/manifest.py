"""The folder's manifest `distilbert_onnx.json`, read once into small frozen values and written back
atomically by one function.

`read_manifest` checks the shape of what it reads (a wrong type under any key the code relies on is
one ManifestError naming that key) and gives a `Manifest`: the task, the variants' records
(`VariantRecord`: validation, fidelity, target, bf16 figures) and the JSON mapping as it is on disk
(`data`), which is what gets written back, so keys this version does not model survive. Fidelity
figures are compared with a target by `meets` and turned into text by `describe_fidelity`, here only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .artifacts import load_json, sha256_file, staged_file
from .errors import ArtifactError, ManifestError
from .options import MIN_COSINE, MIN_WORST_COSINE
from .variants import FP32, VARIANTS, Variant

MANIFEST_NAME = "distilbert_onnx.json"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Target:
    """A fidelity target: the least mean and worst (per row) cosine to fp32; None: no bound."""

    min_cosine: float | None = MIN_COSINE.default
    min_worst_cosine: float | None = MIN_WORST_COSINE.default

    @classmethod
    def from_data(cls, data: Mapping) -> Target:
        return cls(data.get("min_cosine"), data.get("min_worst_cosine"))

    def as_data(self) -> dict:
        return {"min_cosine": self.min_cosine, "min_worst_cosine": self.min_worst_cosine}


def meets(figures: Mapping | None, target: Target) -> bool:
    """Whether fidelity `figures` (mean_cosine, min_cosine) meet `target`; no figures never do."""
    if not figures:
        return False
    return (target.min_cosine is None or figures["mean_cosine"] >= target.min_cosine) and (
        target.min_worst_cosine is None or figures["min_cosine"] >= target.min_worst_cosine)


def describe_fidelity(figures: Mapping, digits: int = 5, full: bool = False) -> str:
    """Fidelity figures as text: "mean cosine 0.99912, worst 0.99501", and with `full` the max abs
    diff, the agreement figures and the rows measured."""
    text = f"mean cosine {figures['mean_cosine']:.{digits}f}, worst {figures['min_cosine']:.{digits}f}"
    if not full:
        return text
    parts = [text, f"max abs diff {figures['max_abs_diff']:.2e}"]
    for key in ("top1_agreement", "span_agreement"):
        if key in figures:
            parts.append(f"{key.replace('_', ' ')} {figures[key]:.1%}")
    return ", ".join(parts) + f" ({figures['rows']} rows)"


@dataclass(frozen=True)
class VariantRecord:
    """A variant's entry in the manifest, with the parts the code reads named."""

    variant: Variant
    data: Mapping
    validation: Mapping | None = None
    fidelity: Mapping | None = None
    quantization: Mapping | None = None
    bf16: Mapping | None = None

    @property
    def sha256(self) -> str | None:
        return self.data.get("sha256")

    @property
    def target(self) -> Target | None:
        """The fidelity target it was quantized to meet (None for a variant not quantized to one)."""
        target = (self.quantization or {}).get("target")
        return Target.from_data(target) if target else None

    @property
    def failed_validation(self) -> bool:
        return (self.validation or {}).get("passed") is False

    @property
    def inference_precision(self) -> str:
        """The precision an OpenVINO int8 IR's other ops ran in when its fidelity was measured."""
        return self.data.get("inference_precision", "f32")


@dataclass(frozen=True)
class Manifest:
    """A folder's manifest: `data` is the JSON mapping as read; the rest are views of it."""

    path: Path
    data: Mapping
    task: str
    records: Mapping[str, VariantRecord] = field(default_factory=dict)

    def record(self, variant: Variant) -> VariantRecord | None:
        return self.records.get(variant.name)

    def has(self, variant: Variant) -> bool:
        return variant.name in self.records

    @property
    def auto_choice(self) -> Mapping:
        return self.data.get("auto_choice") or {}

    @property
    def source(self) -> Mapping:
        return self.data["source"]

    @property
    def fp32_atol(self) -> float:
        """The tolerance model.onnx was validated to against PyTorch (the others are held to it too)."""
        return self.record(FP32).validation["atol"]

    def target(self) -> Target:
        """The folder's fidelity target: per figure, the strictest recorded with its quantized variants."""
        bounds: dict[str, float] = {}
        for record in self.records.values():
            for name, value in (record.target.as_data() if record.target else {}).items():
                if value is not None:
                    bounds[name] = max(value, bounds.get(name, value))
        return Target(bounds.get("min_cosine"), bounds.get("min_worst_cosine")) if bounds else Target()


def read_manifest(folder: str | Path) -> Manifest | None:
    """The folder's manifest, or None for a folder without one (an Optimum export)."""
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        return None
    data = load_json(path, ArtifactError, "re-export the folder")
    if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"{path} is not a format-{FORMAT_VERSION} distilbert-onnx manifest: re-export the folder")
    return parse_manifest(path, data)


def require_manifest(folder: str | Path) -> Manifest:
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


def parse_manifest(path: Path, data: dict) -> Manifest:
    """The typed view of manifest `data` read from `path`; a ManifestError naming the first key of the
    wrong shape."""
    def expect(value, kind: type | tuple, key: str, what: str):
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ManifestError(f"{path}: {key} should be {what}, not {json.dumps(value)[:40]}: re-export the folder")
        return value

    task = expect(data.get("task"), str, '"task"', "a task name")
    variants = expect(data.get("variants"), dict, '"variants"', "an object of variant records")
    for key in ("source", "tools", "auto_choice"):
        if data.get(key) is not None:
            expect(data[key], dict, f'"{key}"', "an object")
    records = {}
    for name, entry in variants.items():
        key = f'"variants"."{name}"'
        expect(entry, dict, key, "an object")
        expect(entry.get("file"), str, f'{key}."file"', "a file name")
        parts = {}
        for part in ("validation", "fidelity", "quantization", "bf16"):
            if entry.get(part) is not None:
                parts[part] = expect(entry[part], dict, f'{key}."{part}"', "an object")
        for figures, where in ((parts.get("fidelity"), "fidelity"), ((parts.get("bf16") or {}).get("fidelity"), "bf16")):
            for figure in ("mean_cosine", "min_cosine") if figures else ():
                expect(figures.get(figure), (int, float), f'{key}."{where}"."{figure}"', "a number")
        if name in VARIANTS:  # a variant of a later version is kept on disk, unread
            records[name] = VariantRecord(VARIANTS[name], entry, **parts)
    return Manifest(path, data, task, records)


def write_manifest(folder: str | Path, data: Mapping) -> Manifest:
    """Write manifest `data` atomically; its typed view."""
    path = Path(folder) / MANIFEST_NAME
    with staged_file(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return parse_manifest(path, dict(data))


def update_manifest(folder: str | Path, variants: Mapping[str, dict] | None = None, **entries) -> Manifest:
    """Read the folder's manifest, add or replace variant `variants` records and top-level `entries`,
    and write it back atomically: the one read-change-write of a manifest."""
    data = dict(require_manifest(folder).data)
    if variants:
        data["variants"] = {**data["variants"], **variants}
    data.update(entries)
    return write_manifest(folder, data)


def variant_record(folder: str | Path, variant: Variant, **details) -> dict:
    """The manifest entry of a variant's graph: file, precision, sha256, size (an IR's: with its
    weights, whose file and sha256 follow), then `details`."""
    path = Path(folder) / variant.file
    record = {"file": variant.file, "precision": variant.precision, "sha256": sha256_file(path),
              "size_bytes": path.stat().st_size}
    if variant.weights:
        weights = Path(folder) / variant.weights
        record["size_bytes"] += weights.stat().st_size
        record["weights"] = {"file": variant.weights, "sha256": sha256_file(weights)}
    return {**record, **details}
