"""The folder's manifest `distilbert_onnx.json`, read once into small frozen values and written back
atomically by one function.

`read_manifest` checks the shape of what it reads (a wrong type under any key the code relies on is
one ManifestError naming that key) and gives a `Manifest`: the task, the variants' records
(`VariantRecord`: validation, fidelity, target, metric gate, bf16 figures) and the JSON mapping as it is on disk
(`data`), which is what gets written back, so keys this version does not model survive. Fidelity
figures are compared with a target by `meets` (`shortfalls` says by how much they miss) and turned
into text by `describe_fidelity`, here only; which bounds a head's target has is the task table's
and targets.py's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .artifacts import load_json, sha256_file, staged_file
from .errors import ArtifactError, ManifestError
from .targets import BOUNDS, target_for
from .tasks import get_task
from .variants import FP32, VARIANTS, Variant

MANIFEST_NAME = "distilbert_onnx.json"
FORMAT_VERSION = 1
# Fidelity figures the code compares with targets (checks/fidelity.py): numbers where present.
FIGURES = ("mean_cosine", "min_cosine", "max_prob_diff", "mean_prob_diff", "top1_agreement", "span_agreement")


@dataclass(frozen=True)
class Target:
    """A fidelity target: bounds on fidelity figures by name (targets.BOUNDS: max_prob_diff and
    min_agreement for heads compared by probabilities or answer spans, min_cosine and
    min_worst_cosine for sentence vectors); a bound that is None or absent does not bind."""

    bounds: Mapping[str, float | None] = field(default_factory=dict)

    @classmethod
    def from_data(cls, data: Mapping) -> Target:
        return cls(dict(data))

    def as_data(self) -> dict:
        return dict(self.bounds)

    @property
    def binding(self) -> dict[str, float]:
        return {name: value for name, value in self.bounds.items() if value is not None}


def meets(figures: Mapping | None, target: Target) -> bool:
    """Whether fidelity `figures` meet every bound of `target`; no figures never do, and a bound
    whose figure the record lacks is missed."""
    return bool(figures) and not shortfalls(figures, target)


def shortfalls(figures: Mapping, target: Target) -> list[str]:
    """One phrase per bound of `target` the figures miss, saying by how much."""
    missed = []
    for name, value in target.binding.items():
        bound = BOUNDS[name]
        figure = next((figures[key] for key in bound.figures if key in figures), None)
        if figure is None:
            missed.append(f"{bound.label} not measured")
        elif (figure < value) if bound.at_least else (figure > value):
            missed.append(f"{bound.label} {figure:.4g} {'<' if bound.at_least else '>'} {value:g} (by {abs(figure - value):.3g})")
    return missed


def describe_target(target: Target) -> str:
    """The target in words: "max prob diff <= 0.1", "mean cosine >= 0.995 and worst cosine >= 0.98"."""
    parts = [f"{BOUNDS[name].label} {'>=' if BOUNDS[name].at_least else '<='} {value:g}"
             for name, value in target.binding.items()]
    return " and ".join(parts) or "none"


def gate_interval(gate: Mapping) -> list[float]:
    """The 95% interval of a metric gate record's drop (a record written before intervals has the drop alone)."""
    return gate.get("drop_interval") or [gate["drop"], gate["drop"]]


def describe_fidelity(figures: Mapping | None, digits: int = 5, full: bool = False) -> str:
    """Fidelity figures as text, in the head's terms: "prob diff max 0.0123, mean 0.00101" or "mean
    cosine 0.99912, worst 0.99501", and with `full` the agreement, the max abs diff and the rows."""
    if not figures:
        return "no figures"
    parts = []
    if "mean_prob_diff" in figures:
        parts.append(f"prob diff max {figures['max_prob_diff']:.{digits - 1}f}, mean {figures['mean_prob_diff']:.{digits}f}")
    if "mean_cosine" in figures:
        parts.append(f"mean cosine {figures['mean_cosine']:.{digits}f}, worst {figures['min_cosine']:.{digits}f}")
    if not full:
        return ", ".join(parts)
    for key in ("top1_agreement", "span_agreement"):
        if key in figures:
            parts.append(f"{key.replace('_', ' ')} {figures[key]:.1%}")
    parts.append(f"max abs diff {figures['max_abs_diff']:.2e}")
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
    def gate(self) -> Mapping | None:
        """Its metric gate record (checks/metric_gate.py), where it was built with one."""
        return self.data.get("gate")

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

    @property
    def left_out(self) -> Mapping:
        """{variant: why} for the int8 variants a build left out because they missed their target."""
        return self.data.get("left_out") or {}

    def target(self) -> Target:
        """The folder's fidelity target: per bound, the strictest recorded with its quantized variants;
        the head's default target when none is recorded."""
        bounds: dict[str, float] = {}
        for record in self.records.values():
            for name, value in (record.target.binding if record.target else {}).items():
                if name in BOUNDS:
                    stricter = max if BOUNDS[name].at_least else min
                    bounds[name] = stricter(value, bounds.get(name, value))
        return Target(bounds) if bounds else Target(target_for(get_task(self.task)))


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
        inside_folder(expect(entry.get("file"), str, f'{key}."file"', "a file name"), f'{key}."file"', path)
        if entry.get("sha256") is not None:
            expect(entry["sha256"], str, f'{key}."sha256"', "a hex digest")
        if entry.get("weights") is not None:
            weights = expect(entry["weights"], dict, f'{key}."weights"', "an object")
            inside_folder(expect(weights.get("file"), str, f'{key}."weights"."file"', "a file name"),
                          f'{key}."weights"."file"', path)
        parts = {}
        for part in ("validation", "fidelity", "quantization", "bf16"):
            if entry.get(part) is not None:
                parts[part] = expect(entry[part], dict, f'{key}."{part}"', "an object")
        for figures, where in ((parts.get("fidelity"), "fidelity"), ((parts.get("bf16") or {}).get("fidelity"), "bf16")):
            for figure in FIGURES if figures else ():
                if figure in figures:
                    expect(figures[figure], (int, float), f'{key}."{where}"."{figure}"', "a number")
        if name in VARIANTS:  # a variant of a later version is kept on disk, unread
            records[name] = VariantRecord(VARIANTS[name], entry, **parts)
    return Manifest(path, data, task, records)


def inside_folder(name: str, key: str, path: Path) -> None:
    """A ManifestError unless `name` is a file inside the manifest's own folder: a relative path
    (`model.onnx`, or `onnx/model.onnx` in a transformers.js package) with no '.', '..' or empty
    part, not absolute (a manifest names the files it vouches for; it never points elsewhere)."""
    parts = name.split("/")
    if "\\" in name or name.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise ManifestError(f"{path}: {key} is {json.dumps(name)[:60]}, which points outside the folder; a manifest "
                            "names files in its own folder only: re-export the folder")


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
        left_out = {name: why for name, why in (data.get("left_out") or {}).items() if name not in variants}
        data.pop("left_out", None)
        if left_out:  # a variant written is no longer left out
            data["left_out"] = left_out
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
