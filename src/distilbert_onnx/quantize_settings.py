"""What `quantize` is asked to do: weight granularity, the fidelity target, calibration texts, and
which fp32 graph to start from."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from .errors import OptionError
from .manifest import Target, meets
from .options import GRAPH, MIN_COSINE, MIN_WORST_COSINE
from .samples import sample_texts

BUILT_IN_SAMPLE = "built-in sample of varied English"
# Both int8 searches (onnx_build/search.py, openvino_build/int8.py): keeping more than this share of
# the compute in fp32 is not worth int8; node sensitivities are measured on this many batches.
MAX_FP32_SHARE = 0.5
SENSITIVITY_BATCHES = 4


@dataclass(frozen=True)
class QuantizeSettings:
    """What `quantize` does: weight granularity, the fidelity target, calibration texts, source graph."""

    per_channel: bool = True
    min_cosine: float | None = MIN_COSINE.default
    min_worst_cosine: float | None = MIN_WORST_COSINE.default
    calibration_texts: tuple[str, ...] | None = None
    calibration_source: str = BUILT_IN_SAMPLE
    graph: str = GRAPH.default

    @classmethod
    def from_options(
        cls,
        calibration_texts: str | Path | list[str] | None = None,
        min_cosine: float | None = None,
        min_worst_cosine: float | None = None,
        per_channel: bool | None = None,
        graph: str | None = None,
        target: bool = True,
    ) -> QuantizeSettings:
        """Settings from user options; None keeps a default, `target=False` drops the fidelity target."""
        settings = cls()
        if calibration_texts is not None:
            texts, source = _read_texts(calibration_texts)
            settings = replace(settings, calibration_texts=tuple(texts), calibration_source=source)
        settings = replace(settings, min_cosine=MIN_COSINE.value(min_cosine),
                           min_worst_cosine=MIN_WORST_COSINE.value(min_worst_cosine), graph=GRAPH.value(graph))
        if not target:
            settings = replace(settings, min_cosine=None, min_worst_cosine=None)
        if per_channel is not None:
            settings = replace(settings, per_channel=per_channel)
        return settings

    @classmethod
    def for_target(cls, calibration_texts: str | Path | None, target: Target) -> QuantizeSettings:
        """Settings that measure against a recorded `target` (no bound at all: no target)."""
        return cls.from_options(calibration_texts, target.min_cosine, target.min_worst_cosine,
                                target=target.min_cosine is not None or target.min_worst_cosine is not None)

    @property
    def target(self) -> Target:
        return Target(self.min_cosine, self.min_worst_cosine)

    def texts(self) -> list[str]:
        if self.calibration_texts is not None:
            return list(self.calibration_texts)
        return sample_texts()

    def meets(self, figures: dict) -> bool:
        return meets(figures, self.target)

    def describe_target(self) -> str:
        parts = []
        if self.min_cosine is not None:
            parts.append(f"mean cosine >= {self.min_cosine}")
        if self.min_worst_cosine is not None:
            parts.append(f"worst cosine >= {self.min_worst_cosine}")
        return " and ".join(parts) or "none"


def _read_texts(source: str | Path | list[str]) -> tuple[list[str], str]:
    if isinstance(source, (list, tuple)):
        texts = [str(text) for text in source]
        return [text for text in texts if text.strip()], "given texts"
    path = Path(source)
    if not path.is_file():
        raise OptionError(f"no calibration text file at {path}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise OptionError(f"{path} is not UTF-8 text: give one text per line") from None
    return [line.strip() for line in lines if line.strip()], path.name
