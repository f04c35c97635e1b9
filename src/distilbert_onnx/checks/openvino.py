"""What `validate DIR` re-checks of the OpenVINO variants (their checksums are checked with the others):

- openvino_model.xml run in fp32 against model.onnx on the padded probes, within the fp32 tolerance;
- its bf16 figure measured again where this CPU has native bf16: a folder that records bf16 as
  meeting its target must still meet it (the runtime would run it in bf16);
- openvino_model_int8.xml on the padded probes, and its fidelity on the calibration texts against
  its recorded target.
Each IR runs as the runtime runs it (runtime.openvino_model.OpenVinoModel). Without openvino
installed each check says so (NOT CHECKED), never passes silently. fp32_ir_checks and
int8_ir_checks are the table's checks of the two rows.
"""

from __future__ import annotations

from ..errors import MissingExtraError, ValidationError
from ..manifest import Target, describe_fidelity
from ..runtime.openvino_model import OpenVinoModel, import_openvino, native_bf16
from ..runtime.precision import inference_precision
from ..variants import FP32, OPENVINO_INT8, OPENVINO_IR, Variant
from .context import Check, FolderContext
from .fidelity import fidelity
from .metric_gate import gate_summary
from .probes import check


def fp32_ir_checks(context: FolderContext) -> list[Check]:
    """The fp32 IR against model.onnx, and its bf16 figure."""
    xml = OPENVINO_IR.file

    def fp32_ir() -> str:
        figures = check(context.reference, _ir(context, OPENVINO_IR, "f32").run, context.spec, context.probes,
                        context.atol, xml, FP32.file)
        worst = max(figures["max_abs_diff"].values())
        return (f"fp32 inference: max abs diff {worst:.1e} <= {context.atol:g} against {FP32.file} on "
                f"{', '.join(figures['probes'])}")

    def bf16() -> str:
        record = context.manifest.record(OPENVINO_IR).bf16 or {"fidelity": None, "reason": "not recorded"}
        if record["fidelity"] is None:
            return f"bf16 {record['reason']}"
        if not native_bf16():
            return "bf16 not measured again: this CPU has no native bf16 (the runtime runs the IR in fp32 here)"
        settings, note, batches, expected, texts = context.measurements(Target.from_data(record["target"]))
        figures = fidelity(expected, _ir(context, OPENVINO_IR, "bf16").run, context.spec, batches)
        line = f"bf16 {describe_fidelity(figures)} to fp32 on {texts}{note}"
        if record["meets_target"] and not settings.meets(figures):
            raise ValidationError("bf16", report=[f"{line}: misses the target {settings.describe_target()} it was recorded to meet"])
        verdict = "meets" if settings.meets(figures) else "misses (recorded as missing: the runtime runs fp32)"
        return f"{line}; {verdict} the target {settings.describe_target()}"

    return _unless_missing(OPENVINO_IR) or [(xml, f"validate {xml} against {FP32.file}", fp32_ir),
                                             (f"{xml} in bf16", f"measure {xml} in bf16", bf16)]


def int8_ir_checks(context: FolderContext) -> list[Check]:
    """The int8 IR on the padded probes, and its fidelity against its recorded target."""
    xml = OPENVINO_INT8.file

    def int8_ir() -> str:
        record = context.manifest.record(OPENVINO_INT8)
        # As the runtime runs it: its other ops in the precision its rule gives here.
        precision = inference_precision(OPENVINO_INT8, context.manifest)[0]
        runner = _ir(context, OPENVINO_INT8, precision).run
        check(context.reference, runner, context.spec, context.probes, float("inf"), xml, FP32.file)  # shapes, finite values
        settings, note, batches, expected, texts = context.measurements(record.target)
        figures = fidelity(expected, runner, context.spec, batches)
        line = (f"runs the padded probes; {describe_fidelity(figures)} to fp32 on {texts} "
                f"(other ops in {precision}){note}")
        if not settings.meets(figures):
            raise ValidationError("int8 fidelity", report=[f"{line}: misses the target {settings.describe_target()}"])
        return f"{line}; target {settings.describe_target()}" + (f"; recorded {gate_summary(record.gate)}" if record.gate else "")

    return _unless_missing(OPENVINO_INT8) or [(xml, f"measure {xml} against {FP32.file}", int8_ir)]


def _unless_missing(variant: Variant) -> list[Check]:
    """Without openvino: the one check that says the variant is NOT CHECKED, and why; else nothing."""
    try:
        import_openvino()
    except MissingExtraError as exc:
        return [(variant.file, f"check {variant.file}", lambda exc=exc: f"NOT CHECKED: {exc}")]
    return []


def _ir(context: FolderContext, variant: Variant, precision: str) -> OpenVinoModel:
    """`variant`'s IR in the folder as the runtime runs it at `precision` (not kept in the compiled-model cache)."""
    return OpenVinoModel(context.folder / variant.file, precision=precision, stored=variant.precision, cache=False)
