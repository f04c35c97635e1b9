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

from .errors import OptionError, positive_tolerance

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


def _cosine(flag: str) -> Callable[[float], float]:
    def check(value: float) -> float:
        if not 0.0 < value <= 1.0:
            raise OptionError(f"{flag} must be in (0, 1], got {value}")
        return value

    return check


def _graph(value: str) -> str:
    if value not in GRAPH.choices:
        raise OptionError(f"graph must be {', '.join(GRAPH.choices[:-1])} or {GRAPH.choices[-1]}, got {value!r}")
    return value


OPSET = Option("opset", 17, "ONNX opset (14 to 17).", _opset)
ATOL = Option("atol", 1e-4, "Tolerance of the validation against {reference}.", positive_tolerance)
MIN_COSINE = Option("min_cosine", 0.995, "Target mean cosine of int8 outputs to fp32", _cosine("min-cosine"))
MIN_WORST_COSINE = Option(
    "min_worst_cosine", 0.98, "Target worst-case cosine of int8 outputs to fp32", _cosine("min-worst-cosine")
)
GRAPH = Option(
    "graph", "auto", "Which fp32 graph to quantize; auto tries both and keeps the faster.", _graph,
    choices=("auto", "fused", "unfused"),
)
