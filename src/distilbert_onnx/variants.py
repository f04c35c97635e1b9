"""The variant table: every graph a deployable folder may hold, one frozen row each.

A row says what a variant is (its file, stored precision, backend and devices), how it computes
(its precision rule), how it is made (the builder and the command that runs it), how `validate`
re-checks it (its check), which CPUs auto may time it on (the CPU flags it needs), how a user asks
for it when it is made only on request (its opt-in: the keyword of `dox.export` / `dox.optimize` and
the CLI flag) and what a user who asks for it on the wrong device is told. Code elsewhere asks the
row (`variant.backend`, `variant.is_int8`, `variant.precision_rule`), calls what it names
(`resolve(variant.check)`), or names a row by its constant (`FP32`, `QUANTIZED`); no other module
compares variant names as strings (tests/test_tasks.py keeps it so).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from .errors import ArtifactError, DeviceError

DEVICES = ("cpu", "cuda")
AUTO = "auto"
ONNXRUNTIME = "onnxruntime"
OPENVINO = "openvino"
# The runtimes a variant runs on; "auto" in load() means whichever runs the chosen variant.
BACKENDS = (AUTO, ONNXRUNTIME, OPENVINO)
INT8 = "int8"

# How a variant computes when it runs (its precision rule, applied by runtime/precision.inference_precision):
AS_STORED = "as stored"  # the graph's own precision
BF16_WHERE_RECORDED = "bf16 where native and recorded to meet the target"  # OpenVINO fp32 IR
AS_MEASURED = "as its fidelity was measured"  # OpenVINO int8 IR: its recorded inference_precision

_ORT_ON_CUDA = "use variant fp16, optimized or fp32 on CUDA, or device cpu"


@dataclass(frozen=True)
class OptIn:
    """How a user asks for a variant made only on request: `keyword` of dox.export / dox.optimize
    (True makes it), `flag` and `help` of the export and optimize commands."""

    keyword: str
    flag: str
    help: str


@dataclass(frozen=True)
class Variant:
    """One graph of the folder. An OpenVINO variant's `file` is its IR's .xml; the weights are the
    .bin of the same name (`weights`). `builder` is the function (module:name) that writes it into a
    folder (an opt-in variant's is called by the optimize step with its onnx_build.optimize.FusedStep),
    `make_with` the command a user runs for it, `check` the function (module:name) that gives
    `validate`'s checks of it (called with its checks.context.FolderContext), `cpu_flags` the CPU
    flags (/proc/cpuinfo) without which auto never times it, `opt_in` how it is asked for when it is
    made only on request, `wrong_device` what asking for it on another device says ({device} filled in)."""

    name: str
    file: str
    precision: str
    devices: tuple[str, ...]
    builder: str
    make_with: str
    check: str
    wrong_device: str = "the {name} graph is built for {devices}, not {device}: choose another variant"
    backend: str = ONNXRUNTIME
    precision_rule: str = AS_STORED
    cpu_flags: tuple[str, ...] = ()
    opt_in: OptIn | None = None

    @property
    def weights(self) -> str | None:
        """The file of an OpenVINO IR's weights (the .bin beside its .xml); None for an ONNX graph."""
        return str(Path(self.file).with_suffix(".bin")) if self.backend == OPENVINO else None

    @property
    def is_int8(self) -> bool:
        return self.precision == INT8

    def wrong_device_message(self, device: str) -> str:
        return self.wrong_device.format(name=self.name, devices=", ".join(self.devices), device=device)


_CHECKS = "distilbert_onnx.checks"
FP32 = Variant("fp32", "model.onnx", "fp32", ("cpu", "cuda"), "distilbert_onnx.exporting.job:export_checkpoint",
               "re-export the checkpoint", f"{_CHECKS}.folder:fp32_checks")
OPTIMIZED = Variant("optimized", "model_optimized.onnx", "fp32", ("cpu", "cuda"),
                    "distilbert_onnx.onnx_build.optimize:optimize_folder", "make it with: distilbert-onnx optimize DIR",
                    f"{_CHECKS}.folder:optimized_checks")
QUANTIZED = Variant(
    "quantized", "model_quantized.onnx", INT8, ("cpu",), "distilbert_onnx.onnx_build.quantize:quantize_folder",
    "make it with: distilbert-onnx quantize DIR", f"{_CHECKS}.folder:int8_checks",
    wrong_device="the int8 (quantized) graph cannot run on CUDA: onnxruntime has no CUDA kernels for its dynamic "
                 "int8 ops; " + _ORT_ON_CUDA,
)
FP16 = Variant("fp16", "model_optimized_fp16.onnx", "fp16", ("cuda",), "distilbert_onnx.onnx_build.optimize:fp16_graph",
               "make it with: distilbert-onnx optimize DIR --fp16", f"{_CHECKS}.fp16:fp16_checks",
               opt_in=OptIn("fp16", "--fp16", "Also write the fp16 graph for CUDA."))
_OPENVINO_ON_CUDA = ("the {name} variant runs on OpenVINO's CPU plugin only, not {device}: "
                     "use device cpu, or a variant onnxruntime runs on CUDA (fp16, optimized, fp32)")
_MAKE_OPENVINO = "make it with: distilbert-onnx openvino DIR (needs the [openvino] extra)"
OPENVINO_IR = Variant("openvino", "openvino_model.xml", "fp32", ("cpu",),
                      "distilbert_onnx.openvino_build.build:openvino_folder", _MAKE_OPENVINO,
                      f"{_CHECKS}.openvino:fp32_ir_checks", _OPENVINO_ON_CUDA,
                      backend=OPENVINO, precision_rule=BF16_WHERE_RECORDED)
OPENVINO_INT8 = Variant("openvino-int8", "openvino_model_int8.xml", INT8, ("cpu",),
                        "distilbert_onnx.openvino_build.build:openvino_folder", _MAKE_OPENVINO,
                        f"{_CHECKS}.openvino:int8_ir_checks", _OPENVINO_ON_CUDA,
                        backend=OPENVINO, precision_rule=AS_MEASURED)

VARIANTS: dict[str, Variant] = {
    variant.name: variant for variant in (FP32, OPTIMIZED, QUANTIZED, FP16, OPENVINO_IR, OPENVINO_INT8)
}
# variant="auto" with onnxruntime only: the first of these the folder has, per device.
AUTO_PREFERENCE = {"cpu": (QUANTIZED, OPTIMIZED, FP32), "cuda": (FP16, OPTIMIZED, FP32)}
# The CPU variants auto may time, in order of preference when timings tie exactly (runtime/choice.py).
CPU_CANDIDATES = (OPENVINO_INT8, QUANTIZED, OPENVINO_IR, OPTIMIZED, FP32)
# The order in which `validate` checks the variants a folder holds (checks/folder.py).
CHECK_ORDER = (FP32, OPTIMIZED, FP16, QUANTIZED, OPENVINO_IR, OPENVINO_INT8)
# The variants made only on request, by the optimize step (their `opt_in` names the keyword and flag).
OPT_IN = tuple(variant for variant in VARIANTS.values() if variant.opt_in)


def get_variant(name: str) -> Variant:
    """The row of variant `name`; an ArtifactError listing the choices for an unknown one."""
    if name not in VARIANTS:
        raise ArtifactError(f"unknown variant {name!r}: choose auto, {', '.join(VARIANTS)}")
    return VARIANTS[name]


def present(folder: str | Path, variant: Variant) -> bool:
    """Whether `folder` holds `variant`'s graph file."""
    return (Path(folder) / variant.file).is_file()


def choose_variant(folder: str | Path, device: str, variant: str = AUTO) -> Variant:
    """The variant to run on `device`: as asked, or by AUTO_PREFERENCE; clear errors otherwise."""
    folder = Path(folder)
    if device not in DEVICES:
        raise DeviceError(f"unknown device {device!r}: choose cpu or cuda")
    if variant == AUTO:
        for candidate in AUTO_PREFERENCE[device]:
            if present(folder, candidate):
                return candidate
        files = ", ".join(candidate.file for candidate in AUTO_PREFERENCE[device])
        raise ArtifactError(f"{folder} holds no ONNX model for {device} (looked for {files})")
    chosen = get_variant(variant)
    if device not in chosen.devices:
        raise DeviceError(chosen.wrong_device_message(device))
    if not present(folder, chosen):
        raise ArtifactError(f"{folder} has no {variant} variant ({chosen.file}); {chosen.make_with}")
    return chosen


def opt_in_asked(**asked: bool) -> tuple[Variant, ...]:
    """The opt-in variants `asked` for by their keywords (fp16=True, ...); a TypeError naming an unknown
    keyword, as Python gives for any unknown keyword argument."""
    keywords = {variant.opt_in.keyword: variant for variant in OPT_IN}
    unknown = sorted(set(asked) - set(keywords))
    if unknown:
        raise TypeError(f"unexpected keyword argument {unknown[0]!r} (the opt-in variants: {', '.join(keywords)})")
    return tuple(variant for keyword, variant in keywords.items() if asked.get(keyword))


def pop_opt_in(options: dict) -> dict[str, bool]:
    """The opt-in keywords among `options` (fp16, ...), taken out of it."""
    return {variant.opt_in.keyword: options.pop(variant.opt_in.keyword) for variant in OPT_IN
            if variant.opt_in.keyword in options}


def resolve(reference: str):
    """The function a row names as "module:name" (its builder or check), imported when first asked for:
    the table itself imports none of them."""
    module, name = reference.split(":")
    return getattr(importlib.import_module(module), name)
