"""The OpenVINO variants of an exported folder: the fp32 IR, its bf16 fidelity, and the int8 IR.

- openvino_model.xml/.bin: model.onnx converted to OpenVINO IR with its weights kept fp32
  (Optimum-Intel's file name), validated against PyTorch (during export) or model.onnx on the padded
  probes, within the fp32 graph's tolerance, run with fp32 inference precision.
- bf16 is an inference setting, not a file: where this CPU has native bf16 the fp32 IR is run in bf16
  on the calibration texts and measured against fp32 with the int8 figures and targets; the runtime
  uses bf16 only where the recorded figures meet the target.
- openvino_model_int8.xml/.bin: NNCF static int8, accuracy-aware (int8.py).

Both IRs are written in a temporary folder inside the target and renamed into place only when every
step passed; then the manifest gains their records. A failure leaves the folder as it was.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..checks.fidelity import calibration_batches, fidelity, reference_outputs
from ..checks.probes import Runner, check, compare, make_probes
from ..config import load_config
from ..errors import MissingExtraError, OptionError, ValidationError
from ..checks.metric_gate import MetricGate, open_gate
from ..manifest import require_manifest, update_manifest, variant_record
from ..progress import Stages
from ..checks.quantize_settings import QuantizeSettings, int8_or_left_out
from ..runtime.machine import cpu_model
from ..runtime.openvino_model import OpenVinoModel, import_openvino, native_bf16
from ..runtime.session import OnnxModel
from ..tasks import get_task
from ..variants import FP32, OPENVINO_INT8, OPENVINO_IR
from ..versions import package_version
from .int8 import JOINED, NNCF_SETTINGS, calibration_texts, import_nncf, int8_meeting_target


def openvino_folder(
    folder: str | Path,
    settings: QuantizeSettings | None = None,
    *,
    int8: bool = True,
    reference: Runner | None = None,
    against: str = "model.onnx",
    stages: Stages | None = None,
) -> dict[str, dict]:
    """Add the OpenVINO variants to an exported folder; returns their new manifest records."""
    folder = Path(folder)
    stages = stages or Stages()
    ov = import_openvino()
    if int8:
        import_nncf()  # before any work: a missing NNCF is an error, not a half-made result
    manifest = require_manifest(folder)
    spec, config = get_task(manifest.task), load_config(folder)
    settings = (settings or QuantizeSettings()).for_task(spec)
    texts = settings.texts()
    if not texts:
        raise OptionError("the calibration texts are empty: give a file with one text per line")
    source = folder / FP32.file
    fp32 = OnnxModel(source).run
    probes = make_probes(spec, config.vocab_size, config.pad_token_id)
    atol = manifest.fp32_atol
    records: dict = {}
    with tempfile.TemporaryDirectory(prefix=".openvino-", dir=folder) as work_dir:
        work = Path(work_dir)
        ir = work / OPENVINO_IR.file
        with stages("convert model.onnx to OpenVINO IR (fp32 weights)"):
            ov.save_model(ov.convert_model(str(source)), str(ir), compress_to_fp16=False)
        with stages(f"validate {ir.name} (fp32 inference) against {against}"):
            validation = check(reference or fp32, _ir(ir).run, spec, probes, atol, ir.name, against)
        with stages(f"run fp32 on {len(texts)} calibration texts; measure the IR in bf16 against it"):
            batches = calibration_batches(folder, spec, config, texts)
            expected = reference_outputs(fp32, batches)
            bf16 = _bf16_record(ir, spec, settings, batches, expected)
        if bf16["fidelity"] is not None and not bf16["meets_target"]:
            _say(stages, f"  bf16 misses the target ({settings.describe_target()}): the runtime will run the IR in fp32")
        records[OPENVINO_IR] = {"validation": validation, "bf16": bf16}
        result = None
        if int8:
            int8_ir = work / OPENVINO_INT8.file
            with stages(f"quantize the IR to int8 with NNCF on {len(texts)} calibration texts, to {settings.describe_target()}"):
                nncf_inputs = texts if settings.calibration_records is not None else calibration_texts(texts)
                calibration = calibration_batches(folder, spec, config, nncf_inputs)
                gate = open_gate(folder, settings.gate_file, settings.max_metric_drop)
                result = int8_or_left_out(lambda: int8_meeting_target(ir, spec, settings, batches, expected, calibration, gate),
                                          OPENVINO_INT8.name, settings, folder, stages.echo)
                if result is not None:
                    ov.save_model(result.model, str(int8_ir), compress_to_fp16=False)
        if int8 and result is not None:
            with stages(f"run {int8_ir.name} on the padded probes; measure it with its other ops in bf16"):
                probe_check = _probe_check(fp32, _ir(int8_ir, stored=OPENVINO_INT8.precision).run, spec, probes, int8_ir.name)
                runs_in, figures, gate_record = _int8_precision(int8_ir, spec, settings, batches, expected, result, gate)
            records[OPENVINO_INT8] = {
                "fidelity": figures,
                **({"gate": gate_record} if gate_record else {}),
                "inference_precision": runs_in,
                "probe_check": probe_check,
                "quantization": _quantization(result, settings),
            }
        for variant in records:
            _move_ir(work / variant.file, folder)
    entries = {variant.name: variant_record(folder, variant, **details) for variant, details in records.items()}
    update_manifest(folder, entries)
    return entries


def export_openvino(folder: Path, wanted: bool | None, int8: bool, settings: QuantizeSettings,
                    reference: Runner, stages: Stages) -> dict[str, dict]:
    """The OpenVINO step of `export`: `wanted` None makes the variants the installed extras allow and
    says which were skipped and why; True requires them; False skips them."""
    if wanted is False:
        return {}
    try:
        import_openvino()
    except MissingExtraError as exc:
        if wanted:
            raise
        _say(stages, f"- OpenVINO variants skipped: {exc}")
        return {}
    if int8:
        try:
            import_nncf()
        except MissingExtraError as exc:
            if wanted:
                raise
            _say(stages, f"- openvino-int8 skipped: {exc}")
            int8 = False
    return openvino_folder(folder, settings, int8=int8, reference=reference, against="PyTorch", stages=stages)


def _bf16_record(ir: Path, spec, settings: QuantizeSettings, batches, expected) -> dict:
    if not native_bf16():
        return {"fidelity": None, "reason": f"not measured: the exporting CPU ({cpu_model()}) has no native bf16"}
    figures = fidelity(expected, _ir(ir, "bf16").run, spec, batches)
    return {
        "fidelity": figures,
        "target": settings.target.as_data(),
        "meets_target": settings.meets(figures),
        "measured_on": cpu_model(),
    }


def _int8_precision(ir: Path, spec, settings: QuantizeSettings, batches, expected, result,
                    gate: MetricGate | None) -> tuple[str, dict, dict | None]:
    """What the int8 IR's other ops compute in, with its fidelity and gate record so: bf16 where this
    CPU has it natively and the int8 IR meets the target (and the gate) that way too (faster on such
    CPUs), else f32. The runtime reads `inference_precision` and runs f32 on CPUs without native bf16."""
    if not native_bf16():
        return "f32", result.fidelity, result.gate
    bf16 = _ir(ir, "bf16", stored=OPENVINO_INT8.precision)
    figures = fidelity(expected, bf16.run, spec, batches)
    if not settings.meets(figures):
        return "f32", result.fidelity, result.gate
    gate_record = gate.judge(bf16, OPENVINO_INT8.name) if gate else None
    if gate_record and not gate_record["meets"]:
        return "f32", result.fidelity, result.gate
    return "bf16", figures, gate_record


def _ir(path: Path, precision: str = "f32", stored: str = OPENVINO_IR.precision) -> OpenVinoModel:
    """An IR being made, as the runtime runs it at `precision` (not kept in the compiled-model cache)."""
    return OpenVinoModel(path, precision=precision, stored=stored, cache=False)


def _probe_check(reference: Runner, candidate: Runner, spec, probes, what: str) -> dict:
    """The int8 IR on the padded probes: right shapes and finite values everywhere (its accuracy is
    judged by the fidelity figures, not a tolerance); the largest differences to fp32 recorded."""
    figures = compare(reference, candidate, spec, probes, atol=float("inf"))
    if figures["failures"]:
        raise ValidationError(f"{what} fails on the padded probes (first: {figures['failures'][0]})",
                              report=figures["failures"])
    return {"reference": "model.onnx", "probes": figures["probes"], "max_abs_diff": figures["max_abs_diff"],
            "passed": True}


def _quantization(result, settings: QuantizeSettings) -> dict:
    return {
        "method": "NNCF post-training static quantization",
        "source_graph": OPENVINO_IR.file,
        "weights": "int8 symmetric, per output channel",
        "activations": "int8, per tensor, ranges from the calibration texts",
        **NNCF_SETTINGS,
        "target": settings.target.as_data(),
        "calibration": {**settings.calibration_record(),
                        "ranges_from": "the rows of the calibration data" if settings.calibration_records is not None
                        else f"the texts and runs of {JOINED} of them joined"},
        "kept_fp32": result.kept_fp32,
        "kept_fp32_compute_share": round(result.fp32_share, 4),
        "search": result.steps,
        "nncf": package_version("nncf"),
        "openvino": package_version("openvino"),
    }


def _move_ir(xml: Path, folder: Path) -> None:
    """Rename an IR into `folder` (same file system: atomic per file), weights first."""
    os.replace(xml.with_suffix(".bin"), folder / xml.with_suffix(".bin").name)
    os.replace(xml, folder / xml.name)


def _say(stages: Stages, line: str) -> None:
    if stages.echo:
        stages.echo(line)
