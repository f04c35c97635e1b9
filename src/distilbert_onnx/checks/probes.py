"""How a graph is checked against its reference: probe batches and an output-by-output comparison.

Validation runs a graph and its reference (PyTorch, or the already validated fp32 graph) on probe
batches whose shapes differ from the export's example shape, with full, right-padded and
left-padded rows, and compares every output within an absolute tolerance. Per-token outputs are not
compared at padded positions, where they mean nothing. Every failure is collected into one report
before a ValidationError is raised. A graph is run as a Runner: a runtime model's `run` (OnnxModel,
OpenVinoModel) or the PyTorch model's (pytorch.py). Needs only numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np

from ..errors import ValidationError
from ..runtime.session import Runner
from ..tasks import TaskSpec

# (batch, sequence, choices) of each probe (choices for multiple choice only). The exporter traces
# 2 rows of 16 tokens (tasks.CHOICES choices each): no probe has the traced size on any axis.
PROBE_SHAPES = ((4, 23, 3), (3, 61, 2), (1, 7, 5))
ROW_KINDS = ("full", "right-padded", "left-padded", "short right-padded")


@dataclass(frozen=True)
class Probe:
    """One batch of inputs; `row_kinds` says how each (flattened) row is padded."""

    name: str
    input_ids: np.ndarray
    attention_mask: np.ndarray
    row_kinds: tuple[str, ...]

    @property
    def feeds(self) -> dict[str, np.ndarray]:
        return {"input_ids": self.input_ids, "attention_mask": self.attention_mask}


def make_probes(spec: TaskSpec, vocab_size: int, pad_token_id: int = 0, seed: int = 0) -> list[Probe]:
    """Deterministic probe batches for `spec`: every shape in PROBE_SHAPES, every row kind."""
    rng = np.random.default_rng(seed)
    probes = []
    for batch, sequence, choices in PROBE_SHAPES:
        shape = spec.input_shape(batch, sequence, choices)
        rows = int(np.prod(shape[:-1]))
        ids = rng.integers(1, vocab_size, size=(rows, sequence), dtype=np.int64)
        ids[ids == pad_token_id] = (pad_token_id + 1) % vocab_size
        mask = np.ones((rows, sequence), dtype=np.int64)
        kinds = []
        for row in range(rows):
            kind = ROW_KINDS[row % len(ROW_KINDS)] if sequence > 4 else "full"
            length = {"full": sequence, "right-padded": sequence // 2 + 1,
                      "left-padded": sequence // 3 + 1, "short right-padded": 2}[kind]
            padded = slice(0, sequence - length) if kind == "left-padded" else slice(length, sequence)
            mask[row, padded] = 0
            ids[row, padded] = pad_token_id
            kinds.append(kind)
        probes.append(
            Probe("x".join(map(str, shape)), ids.reshape(shape), mask.reshape(shape), tuple(kinds))
        )
    return probes


def compare(
    reference: Runner, candidate: Runner, spec: TaskSpec, probes: list[Probe], atol: float
) -> dict:
    """Run both on every probe; the largest differences per output and a line per failure."""
    max_abs_diff = {name: 0.0 for name in spec.output_names}
    failures = []
    for probe in probes:
        expected, actual = reference(probe.feeds), candidate(probe.feeds)
        rows = len(probe.row_kinds)
        mask = probe.attention_mask.reshape(rows, -1).astype(bool)
        for name in spec.output_names:
            want, got = np.asarray(expected[name]), np.asarray(actual.get(name))
            if got.shape != want.shape:
                failures.append(f"{name} on {probe.name}: shape {got.shape}, expected {want.shape}")
                continue
            got = got.astype(np.float64).reshape(rows, -1)
            want = want.astype(np.float64).reshape(rows, -1)
            if name in spec.per_token_outputs():
                valid = np.repeat(mask, got.shape[1] // mask.shape[1], axis=1)
            else:
                valid = np.ones_like(got, dtype=bool)
            if not np.isfinite(got[valid]).all():
                failures.append(f"{name} on {probe.name}: non-finite values")
                continue
            row_diff = np.where(valid, np.abs(got - want), 0.0).max(axis=1)
            max_abs_diff[name] = max(max_abs_diff[name], float(row_diff.max()))
            for kind in dict.fromkeys(probe.row_kinds):
                worst = max(d for d, k in zip(row_diff, probe.row_kinds) if k == kind)
                if worst > atol:
                    failures.append(f"{name} on {probe.name}, {kind} rows: max abs diff {worst:.2e} > atol {atol:g}")
    return {
        "atol": atol,
        "probes": [probe.name for probe in probes],
        "max_abs_diff": max_abs_diff,
        "failures": failures,
    }


def check(
    reference: Runner,
    candidate: Runner,
    spec: TaskSpec,
    probes: list[Probe],
    atol: float,
    what: str,
    against: str,
) -> dict:
    """compare(), then a ValidationError carrying every failure if there is any.

    Returns the figures for the manifest: reference, tolerance, probe shapes, largest differences.
    """
    figures = compare(reference, candidate, spec, probes, atol)
    failures = figures.pop("failures")
    if failures:
        raise ValidationError(
            f"{what} disagrees with {against}: {len(failures)} comparison(s) beyond atol {atol:g} "
            f"(first: {failures[0]})",
            report=failures,
        )
    return {"reference": against, **figures, "passed": True}
