"""The options of export, optimize and quantize, each defined once: its default, its check and its help.

The CLI takes its defaults and help texts from here, the Python API (`export`, `optimize`,
`quantize`) passes what it is given through, and the export job, optimize_folder and
QuantizeSettings resolve and check values with `Option.value`. A default changed here changes
everywhere. No torch import.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import OptionError, positive_int, positive_tolerance

# LayerNormalization is a single op from opset 17; below 14 the exporter lacks ops DistilBERT uses.
SUPPORTED_OPSETS = range(14, 18)


@dataclass(frozen=True)
class Option:
    """One option: its keyword in the Python API, its default, its help, and the check of a value."""

    name: str
    default: Any
    help: str
    check: Callable[[Any], Any]
    choices: tuple[str, ...] = ()

    @property
    def flag(self) -> str:
        """The CLI spelling: --min-cosine for min_cosine."""
        return "--" + self.name.replace("_", "-")

    def value(self, given: Any = None) -> Any:
        """`given` once checked (an OptionError if it cannot be used); the default for None."""
        return self.default if given is None else self.check(given)


def _opset(value: int) -> int:
    if value not in SUPPORTED_OPSETS:
        raise OptionError(
            f"opset {value} is not supported: choose {SUPPORTED_OPSETS.start} to {SUPPORTED_OPSETS.stop - 1} "
            f"(default {OPSET.default})"
        )
    return value


def _share(flag: str) -> Callable[[float], float]:
    """The check of a cosine, probability or share bound: a number in (0, 1]."""

    def check(value: float) -> float:
        if not 0.0 < value <= 1.0:
            raise OptionError(f"{flag} must be in (0, 1], got {value}")
        return value

    return check


def _points(value: float) -> float:
    if not value >= 0:
        raise OptionError(f"max-metric-drop must be 0 or more points, got {value}")
    return float(value)


def _graph(value: str) -> str:
    if value not in GRAPH.choices:
        raise OptionError(f"graph must be {', '.join(GRAPH.choices[:-1])} or {GRAPH.choices[-1]}, got {value!r}")
    return value


OPSET = Option("opset", 17, "ONNX opset (14 to 17).", _opset)
ATOL = Option("atol", 1e-4, "Tolerance of the validation against {reference}.", positive_tolerance)
# The int8 fidelity targets (targets.py says which heads each applies to and why these defaults).
MIN_COSINE = Option("min_cosine", 0.995, "Target mean cosine of int8 sentence vectors to fp32's (embeddings)",
                    _share("min-cosine"))
MIN_WORST_COSINE = Option(
    "min_worst_cosine", 0.98, "Target worst-case cosine of int8 sentence vectors to fp32's (embeddings)",
    _share("min-worst-cosine"),
)
MAX_PROB_DIFF = Option(
    "max_prob_diff", 0.1, "Largest change of any predicted probability from fp32's (classes, tokens, answer spans)",
    _share("max-prob-diff"),
)
MIN_AGREEMENT = Option(
    "min_agreement", None, "Target share of predictions (top class, token label, answer span) equal to fp32's",
    _share("min-agreement"),
)
CALIBRATION_ROWS = Option(
    "calibration_rows", 300, "Rows of --calibration-data used, sampled reproducibly (seed 0) when it has more.",
    lambda value: positive_int("calibration-rows", value),
)
MAX_METRIC_DROP = Option(
    "max_metric_drop", None, "Largest drop of the task's metric from fp32's on --eval-data, in points, for an int8 variant (the upper end of the drop's 95% interval).",
    _points,
)
GRAPH = Option(
    "graph", "auto", "Which fp32 graph to quantize; auto tries both and keeps the faster.", _graph,
    choices=("auto", "fused", "unfused"),
)
