"""variant="auto" on the CPU: the fastest variant that meets the folder's fidelity target, on this machine.

Which variant is fastest depends on the CPU (AMX, AVX-512 VNNI, native bf16 or not) and the library
versions, not on where the folder was exported, so it is measured where it runs:

1. Candidates: the variants present whose recorded fidelity meets the folder's target (per bound, the
   strictest recorded with its int8 variants; targets.py): `quantized` and `openvino-int8` by their fidelity to fp32,
   `openvino` (bf16 where allowed, else f32; validated against fp32 at export) and `optimized` (else
   `fp32`). A variant without a manifest record, or one that misses the target, is never a candidate;
   nor is an int8 variant that misses its metric gate (checks/metric_gate.py), or one left ungated in
   a folder whose other int8 variants were gated, or a variant whose row needs CPU flags this CPU
   lacks (variants.py, `cpu_flags`).
   On a CPU with int8 dot-product instructions (VNNI, AMX) variants that compute in fp32 are not timed
   when an int8 candidate exists: there int8 kernels are 2-4x faster (bench/README.md), and each
   candidate timed costs the first load its compile and runs.
2. The machine key: CPU model, the CPU flags that decide int8 / bf16 speed, threads, onnxruntime and
   openvino versions, and the candidates' sha256. A choice recorded for that key is used at once:
   from the per-user cache (`cache_root()/choices.json`), else from the folder's manifest
   (`auto_choice`, written by `record_choice`, e.g. at export time on the exporting machine).
3. Otherwise each candidate is loaded and timed on CHOICE_SHAPE, the candidates taking turns for
   CHOICE_ROUNDS rounds; the fastest by median wins and the choice is written to the per-user cache.

Where openvino is not installed, or the folder has no OpenVINO variant or no manifest, auto keeps the
onnxruntime rule (variants.AUTO_PREFERENCE: quantized, optimized, fp32) and the log says so.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from ..artifacts import read_json, staged_file
from ..errors import ArtifactError
from ..manifest import (Manifest, Target, describe_fidelity, describe_target, gate_interval, require_manifest, shortfalls,
                        update_manifest)
from ..targets import measures
from ..tasks import get_task
from ..timing import in_turns, synthetic_feeds
from ..variants import (AUTO, AUTO_PREFERENCE, CPU_CANDIDATES, FP32, ONNXRUNTIME, OPENVINO, OPENVINO_IR, OPTIMIZED,
                        VARIANTS, Variant, choose_variant, present)
from .backends import open_variant
from .machine import cpu_flags, cpu_model
from .openvino_model import cache_root, openvino_available, openvino_version
from .precision import inference_precision
from .session import check_threads, logger

CHOICE_SHAPE = (2, 128)  # batch x tokens the candidates are timed on (tokens capped by the model's maximum)
CHOICE_ROUNDS = 4
CHOICES_FILE = "choices.json"
# CPU flags that decide which int8 / bf16 kernels run (with those the variant table's rows need).
SPEED_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16", "avx512_fp16",
               *(flag for variant in VARIANTS.values() for flag in variant.cpu_flags))
INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


@dataclass
class Choice:
    """The variant auto picked, why, and the model already made for it when it was measured."""

    variant: Variant
    reason: str
    model: object | None = None
    latency_ms: dict[str, float] = field(default_factory=dict)


def choose_auto_cpu(folder: Path, manifest: Manifest | None, backend: str, threads: int | None,
                    config=None) -> Choice:
    """The variant auto runs on the CPU for `backend` (auto, onnxruntime or openvino); `config`: the
    folder's config.json, if already read."""
    has_openvino_files = any(variant.backend == OPENVINO and present(folder, variant) for variant in VARIANTS.values())
    if backend == ONNXRUNTIME:
        return _onnxruntime_rule(folder, "backend='onnxruntime' asked for")
    if backend == AUTO and not has_openvino_files:
        return _onnxruntime_rule(folder, "the folder has no OpenVINO variant")
    if backend == AUTO and not openvino_available():
        return _onnxruntime_rule(folder, "openvino is not installed (pip install 'distilbert-onnx[openvino]' to consider the OpenVINO variants)")
    if manifest is None:
        if backend == OPENVINO:
            return Choice(choose_variant(folder, "cpu", OPENVINO_IR.name), "the folder has no manifest: the OpenVINO fp32 IR")
        return _onnxruntime_rule(folder, "the folder has no manifest, so no recorded fidelity to choose by")
    candidates, excluded = fidelity_candidates(folder, manifest, backend)
    for name, why in excluded.items():
        logger.info("auto: not a candidate: %s (%s)", name, why)
    if not candidates:
        raise ArtifactError(f"{folder} has no {backend} variant that meets its fidelity target: " + "; ".join(
            f"{name}: {why}" for name, why in excluded.items()))
    candidates = _without_fp32_beside_int8(candidates, manifest)
    if len(candidates) == 1:
        return Choice(candidates[0], "the only candidate that meets the fidelity target")
    key, machine = machine_key(folder, manifest, candidates, threads)
    recorded, where = _recorded(folder, manifest, key)
    if recorded and recorded["variant"] in [variant.name for variant in candidates]:
        return Choice(VARIANTS[recorded["variant"]], f"measured on this machine before ({where}): {_timings(recorded['latency_ms'])}",
                      latency_ms=recorded["latency_ms"])
    choice = measure_candidates(folder, manifest, candidates, threads, config)
    _save_choice(key, {"variant": choice.variant.name, "latency_ms": choice.latency_ms, "machine": machine, "folder": str(folder)})
    return choice


def _onnxruntime_rule(folder: Path, why: str) -> Choice:
    variant = choose_variant(folder, "cpu", AUTO)
    names = ", ".join(variant.name for variant in AUTO_PREFERENCE["cpu"])
    return Choice(variant, f"{why}: the onnxruntime rule, first present of {names}")


def _int8_verdict(fidelity, target: Target) -> str | None:
    """Why an int8 variant's recorded fidelity keeps it out of auto's candidates, or None. It is held
    to the bounds of the folder's target it has figures for (a folder quantized again after the
    per-head measures may hold a variant recorded in cosine terms beside one in probabilities)."""
    held_to = Target({name: value for name, value in target.binding.items() if fidelity and measures(fidelity, name)})
    if not held_to.binding:
        return (f"its recorded fidelity ({describe_fidelity(fidelity)}) is not in the terms of the target "
                f"{describe_target(target)}")
    missed = shortfalls(fidelity, held_to)
    return f"its recorded fidelity misses the target: {'; '.join(missed)}" if missed else None


def _gate_verdict(gate, gated: bool) -> str | None:
    """Why an int8 variant's metric gate keeps it out of auto's candidates, or None: it misses its
    gate, or the folder's other int8 variants were gated and this one was not."""
    if gate and not gate["meets"]:
        return (f"it misses its metric gate: {gate['metric']} drop {gate['drop']:.2f} (95% interval up to "
                f"{gate_interval(gate)[1]:.2f}) > {gate['max_drop']:g} points on {gate['data']}")
    if gated and not gate:
        return "it was not checked against a metric gate, as the folder's other int8 variants were"
    return None


def fidelity_candidates(folder: Path, manifest: Manifest, backend: str) -> tuple[list[Variant], dict[str, str]]:
    """(the variants auto may pick, {variant: why not} for those present but left out)."""
    target = manifest.target()
    gated = any(record.gate for record in manifest.records.values())
    candidates, excluded = [], {}
    for variant in CPU_CANDIDATES:
        if not present(folder, variant) or "cpu" not in variant.devices:
            continue
        name, record = variant.name, manifest.record(variant)
        missing_flags = sorted(set(variant.cpu_flags) - cpu_flags()) if variant.cpu_flags else []
        if backend not in (AUTO, variant.backend):
            excluded[name] = f"backend={backend!r} asked for"
        elif missing_flags:
            excluded[name] = f"this CPU lacks {', '.join(missing_flags)}"
        elif record is None:
            excluded[name] = "no manifest record, so no recorded fidelity"
        elif variant == FP32 and manifest.has(OPTIMIZED) and present(folder, OPTIMIZED):
            excluded[name] = "the fused graph (optimized) computes the same, faster"
        elif variant.is_int8 and _int8_verdict(record.fidelity, target):
            excluded[name] = _int8_verdict(record.fidelity, target)
        elif variant.is_int8 and _gate_verdict(record.gate, gated):
            excluded[name] = _gate_verdict(record.gate, gated)
        elif record.failed_validation:
            excluded[name] = "it failed validation against fp32"
        else:
            candidates.append(variant)
    return candidates, excluded


def _without_fp32_beside_int8(candidates: list[Variant], manifest: Manifest) -> list[Variant]:
    if not cpu_flags() & set(INT8_DOT_FLAGS) or not any(variant.is_int8 for variant in candidates):
        return candidates
    kept = [variant for variant in candidates if variant.is_int8
            or (variant.backend == OPENVINO and inference_precision(variant, manifest)[0] == "bf16")]
    for variant in candidates:
        if variant not in kept:
            logger.info("auto: not timed: %s (fp32 kernels, and this CPU has int8 dot products for the int8 candidates)", variant.name)
    return kept


def machine_key(folder: Path, manifest: Manifest, candidates: list[Variant], threads: int | None) -> tuple[str, dict]:
    """(the key a measured choice is cached under, what went into it)."""
    import onnxruntime

    machine = {
        "cpu": cpu_model(),
        "flags": sorted(cpu_flags() & set(SPEED_FLAGS)),
        "threads": check_threads(threads),
        "onnxruntime": onnxruntime.__version__,
        "openvino": openvino_version(),
    }
    shas = {variant.name: manifest.record(variant).sha256 for variant in candidates}
    shas.update({variant.name + " precision": inference_precision(variant, manifest)[0]
                 for variant in candidates if variant.backend == OPENVINO})
    material = json.dumps({"machine": machine, "variants": shas, "shape": CHOICE_SHAPE}, sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()[:32], machine


def measure_candidates(folder: Path, manifest: Manifest, candidates: list[Variant], threads: int | None,
                       config=None) -> Choice:
    """Time each candidate here, in turns, on synthetic inputs of CHOICE_SHAPE; the fastest wins."""
    from ..config import load_config

    config = config or load_config(folder)
    batch, length = CHOICE_SHAPE
    feeds = synthetic_feeds(get_task(manifest.task), config.vocab_size, batch, min(length, config.max_position_embeddings))
    started = time.perf_counter()
    models = {variant.name: open_variant(folder, variant, "cpu", threads, manifest, config) for variant in candidates}
    seconds = in_turns({name: partial(model.run, feeds) for name, model in models.items()}, CHOICE_ROUNDS)
    latency = {name: round(value * 1000, 3) for name, value in seconds.items()}
    order = [variant.name for variant in CPU_CANDIDATES]
    fastest = min(latency, key=lambda name: (latency[name], order.index(name)))
    seconds = time.perf_counter() - started
    return Choice(VARIANTS[fastest], f"measured now in {seconds:.1f} s: {_timings(latency)}", models[fastest], latency)


def record_choice(folder: Path, manifest: Manifest, threads: int | None = None) -> tuple[str, dict] | None:
    """Measure the auto choice on this machine: (its key, the manifest's `auto_choice` mapping with it
    added; the caller writes the manifest), or None when there is nothing to choose between."""
    candidates = _without_fp32_beside_int8(fidelity_candidates(folder, manifest, "auto")[0], manifest)
    if len(candidates) < 2 or not openvino_available():
        return None
    key, machine = machine_key(folder, manifest, candidates, threads)
    choice = measure_candidates(folder, manifest, candidates, threads)
    recorded = dict(manifest.auto_choice)
    recorded[key] = {"variant": choice.variant.name, "latency_ms": choice.latency_ms, "machine": machine}
    return key, recorded


def record_choice_in_manifest(folder: Path, threads: int | None = None) -> dict | None:
    """record_choice, written into the folder's manifest: the machine's new `auto_choice` entry, or
    None when there is nothing to choose between (the manifest is then left as it is)."""
    measured = record_choice(folder, require_manifest(folder), threads)
    if measured is None:
        return None
    key, recorded = measured
    update_manifest(folder, auto_choice=recorded)
    return recorded[key]


def _recorded(folder: Path, manifest: Manifest, key: str) -> tuple[dict | None, str]:
    cached = _read_choices().get(key)
    if _usable(cached):
        return cached, f"cached in {cache_root() / CHOICES_FILE}"
    in_manifest = manifest.auto_choice.get(key)
    if _usable(in_manifest):
        return in_manifest, "recorded in the folder's manifest"
    return None, ""


def _usable(record) -> bool:
    return isinstance(record, dict) and record.get("variant") in VARIANTS and isinstance(record.get("latency_ms"), dict)


def _read_choices() -> dict:
    path = cache_root() / CHOICES_FILE
    try:
        return read_json(path, error=ValueError)
    except (ValueError, OSError) as exc:
        logger.warning("auto: ignoring the unreadable choice cache %s (%s)", path, exc)
        return {}


def _save_choice(key: str, record: dict) -> None:
    path = cache_root() / CHOICES_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        choices = _read_choices()
        choices[key] = record
        with staged_file(path) as tmp:
            tmp.write_text(json.dumps(choices, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        logger.warning("auto: could not cache the choice in %s (%s): the next load measures again", path, exc)


def _timings(latency: dict) -> str:
    shape = f"{CHOICE_SHAPE[0]} x {CHOICE_SHAPE[1]} tokens"
    return ", ".join(f"{name} {ms:.1f} ms" for name, ms in sorted(latency.items(), key=lambda item: item[1])) + f" at {shape}"
