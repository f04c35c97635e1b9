"""What `validate DIR` re-checks of the OpenVINO variants (their checksums are checked with the others):

- openvino_model.xml run in fp32 against model.onnx on the padded probes, within the fp32 tolerance;
- its bf16 figure measured again where this CPU has native bf16: a folder that records bf16 as
  meeting its target must still meet it (the runtime would run it in bf16);
- openvino_model_int8.xml on the padded probes, and its fidelity on the calibration texts against
  its recorded target.
Without openvino installed each check says so (NOT CHECKED), never passes silently.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..errors import MissingExtraError, ValidationError
from ..manifest import Manifest, Target, describe_fidelity
from ..quantize_settings import recorded_settings
from ..runtime.openvino_model import OpenVinoModel, import_openvino, native_bf16
from ..runtime.precision import inference_precision
from ..variants import OPENVINO_INT8, OPENVINO_IR
from .fidelity import calibration_batches, fidelity, reference_outputs
from .metric_gate import gate_summary
from .probes import check

Check = tuple[str, str, Callable[[], str]]  # label, stage name, the check (a line, or a ValidationError)


def openvino_checks(folder: Path, manifest: Manifest, spec, config, probes, reference, atol: float,
                    calibration_texts) -> list[Check]:
    """The checks for the OpenVINO variants the manifest lists, in order."""
    listed = [variant for variant in (OPENVINO_IR, OPENVINO_INT8) if manifest.has(variant)]
    if not listed:
        return []
    try:
        import_openvino()
    except MissingExtraError as exc:
        return [(variant.file, f"check {variant.file}", lambda exc=exc: f"NOT CHECKED: {exc}") for variant in listed]
    measured: dict = {}

    def measurements(target: Target):
        """The settings that judge by the recorded `target` (and a note when it is replaced), the
        calibration batches and fp32's outputs on them (made once for both checks)."""
        settings, note = recorded_settings(spec, target, calibration_texts)
        if not measured:
            texts = settings.texts()
            measured["batches"] = calibration_batches(folder, spec, config, texts)
            measured["expected"] = reference_outputs(reference, measured["batches"])
            measured["texts"] = f"{len(texts)} texts ({settings.calibration_source})"
        return settings, note, measured["batches"], measured["expected"]

    def fp32_ir() -> str:
        figures = check(reference, _ir(folder, OPENVINO_IR, "f32").run, spec, probes, atol, OPENVINO_IR.file, "model.onnx")
        worst = max(figures["max_abs_diff"].values())
        return f"fp32 inference: max abs diff {worst:.1e} <= {atol:g} against model.onnx on {', '.join(figures['probes'])}"

    def bf16() -> str:
        record = manifest.record(OPENVINO_IR).bf16 or {"fidelity": None, "reason": "not recorded"}
        if record["fidelity"] is None:
            return f"bf16 {record['reason']}"
        if not native_bf16():
            return "bf16 not measured again: this CPU has no native bf16 (the runtime runs the IR in fp32 here)"
        settings, note, batches, expected = measurements(Target.from_data(record["target"]))
        figures = fidelity(expected, _ir(folder, OPENVINO_IR, "bf16").run, spec, batches)
        line = f"bf16 {describe_fidelity(figures)} to fp32 on {measured['texts']}{note}"
        if record["meets_target"] and not settings.meets(figures):
            raise ValidationError("bf16", report=[f"{line}: misses the target {settings.describe_target()} it was recorded to meet"])
        verdict = "meets" if settings.meets(figures) else "misses (recorded as missing: the runtime runs fp32)"
        return f"{line}; {verdict} the target {settings.describe_target()}"

    def int8_ir() -> str:
        path, record = folder / OPENVINO_INT8.file, manifest.record(OPENVINO_INT8)
        # As the runtime runs it: its other ops in the precision its rule gives here.
        precision = inference_precision(OPENVINO_INT8, manifest)[0]
        runner = _ir(folder, OPENVINO_INT8, precision).run
        check(reference, runner, spec, probes, float("inf"), path.name, "model.onnx")  # shapes, finite values
        settings, note, batches, expected = measurements(record.target)
        figures = fidelity(expected, runner, spec, batches)
        line = (f"runs the padded probes; {describe_fidelity(figures)} to fp32 on {measured['texts']} "
                f"(other ops in {precision}){note}")
        if not settings.meets(figures):
            raise ValidationError("int8 fidelity", report=[f"{line}: misses the target {settings.describe_target()}"])
        return f"{line}; target {settings.describe_target()}" + (f"; recorded {gate_summary(record.gate)}" if record.gate else "")

    checks: list[Check] = []
    if manifest.has(OPENVINO_IR):
        xml = OPENVINO_IR.file
        checks += [(xml, f"validate {xml} against model.onnx", fp32_ir), (f"{xml} in bf16", f"measure {xml} in bf16", bf16)]
    if manifest.has(OPENVINO_INT8):
        xml = OPENVINO_INT8.file
        checks.append((xml, f"measure {xml} against model.onnx", int8_ir))
    return checks


def _ir(folder: Path, variant, precision: str) -> OpenVinoModel:
    """`variant`'s IR in `folder` as the runtime runs it at `precision` (not kept in the compiled-model cache)."""
    return OpenVinoModel(folder / variant.file, precision=precision, stored=variant.precision, cache=False)
