"""What `validate DIR` knows while it re-checks a folder, handed to each variant's checks.

The variant table names, per variant, the function that gives `validate`'s checks of it (`check`,
e.g. checks/fp16.py's fp16_checks); checks/folder.py calls each with one FolderContext and runs the
checks it returns in order. A check is (label, stage name, a function returning one line or raising
a ValidationError).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..manifest import Manifest, Target
from ..checks.quantize_settings import QuantizeSettings, recorded_settings
from ..tasks import TaskSpec
from .fidelity import Batch, calibration_batches, reference_outputs
from .probes import Probe, Runner

Check = tuple[str, str, Callable[[], str]]
# (source checkpoint folder, task, revision) -> a Runner over its PyTorch model
PytorchReference = Callable[[Path, TaskSpec, "str | None"], Runner]


@dataclass
class FolderContext:
    """The folder, its manifest, task and config, the probes, model.onnx as the reference, the fp32
    tolerance, the texts to measure int8 fidelity on and the PyTorch reference's maker (or None)."""

    folder: Path
    manifest: Manifest
    spec: TaskSpec
    config: object
    probes: list[Probe]
    reference: Runner
    atol: float
    calibration_texts: str | Path | None
    pytorch: PytorchReference | None
    _measured: dict = field(default_factory=dict)

    def measurements(self, target: Target, per_text: bool = False) -> tuple[QuantizeSettings, str, list[Batch], list[dict], str]:
        """The settings that judge by the recorded `target` (and a note when it is replaced), the
        calibration batches (with `per_text`, also one text per call: checks/fidelity.py) and fp32's
        outputs on them, and a description of the texts; made once for every check that asks."""
        settings, note = recorded_settings(self.spec, target, self.calibration_texts)
        if per_text not in self._measured:
            texts = settings.texts()
            batches = calibration_batches(self.folder, self.spec, self.config, texts, per_text=per_text)
            self._measured[per_text] = dict(batches=batches, expected=reference_outputs(self.reference, batches),
                                            texts=f"{len(texts)} texts ({settings.calibration_source})")
        measured = self._measured[per_text]
        return settings, note, measured["batches"], measured["expected"], measured["texts"]


def summary(figures: dict) -> str:
    """A validation record in one line: the largest difference, the tolerance, the reference, the probes."""
    worst = max(figures["max_abs_diff"].values())
    return f"max abs diff {worst:.1e} <= {figures['atol']:g} against {figures['reference']} on {', '.join(figures['probes'])}"
