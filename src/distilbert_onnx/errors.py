"""The exceptions distilbert-onnx raises for problems a user can fix.

Each one is also a ValueError (bad input: a path, a config, a task, a folder) or a RuntimeError
(something that could not be done: a graph that disagrees with PyTorch, a missing provider), so
callers can catch the builtin they expect. The CLI prints any DistilbertOnnxError as one line.
"""


class DistilbertOnnxError(Exception):
    """Base of every error this package raises on purpose."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (another library's, often long), or its type's name
    when it has no message."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class TaskError(DistilbertOnnxError, ValueError):
    """An unknown task, or a checkpoint whose task cannot be told."""


class OptionError(DistilbertOnnxError, ValueError):
    """An option value that cannot be used (an opset, a tolerance, a batch size)."""


def positive_int(name: str, value, note: str = "") -> int:
    """`value` if it is a positive integer (not a bool); an OptionError naming `name` otherwise."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise OptionError(f"{name} must be a positive integer{note}, got {value!r}")
    return value


def positive_tolerance(atol: float) -> float:
    """`atol` if it is a usable (positive) tolerance; an OptionError otherwise."""
    if not atol > 0:
        raise OptionError(f"atol must be a positive tolerance, got {atol}")
    return atol


class DataError(DistilbertOnnxError, ValueError):
    """A data file that cannot be used as given: missing, empty, a missing column, a bad value or
    label; the message names the file, and the row and column where there is one."""


class ConfigError(DistilbertOnnxError, ValueError):
    """config.json is missing, unreadable or not a DistilBERT config."""


class CheckpointError(DistilbertOnnxError, ValueError):
    """The checkpoint cannot be found or read."""


class MissingWeightsError(CheckpointError):
    """The checkpoint lacks weights the requested head needs (never filled in at random)."""


class ArtifactError(DistilbertOnnxError, ValueError):
    """A deployable folder is missing, occupied, incomplete or corrupt."""


class ValidationError(DistilbertOnnxError, RuntimeError):
    """An ONNX graph disagrees with its reference beyond the tolerance.

    `report` holds every failing comparison, not just the first.
    """

    def __init__(self, message: str, report: list[str] | None = None):
        super().__init__(message)
        self.report = report or []


class FusionError(DistilbertOnnxError, RuntimeError):
    """onnxruntime's optimizer did not fuse the graph as completely as DistilBERT requires."""


class QuantizationError(DistilbertOnnxError, RuntimeError):
    """Quantization could not produce a graph that meets the requested fidelity."""


class DeviceError(DistilbertOnnxError, RuntimeError):
    """The requested device or execution provider cannot be used."""


class MissingExtraError(DistilbertOnnxError, RuntimeError):
    """A feature needs an optional dependency that is not installed."""


class ManifestError(ArtifactError):
    """A manifest whose JSON has the wrong shape under a key (the message names the key)."""
