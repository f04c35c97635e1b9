"""OpenVINO variants added to an exported folder for the runtime tests and benchmarks, with the manifest
records of OV-CONTRACT.md.

A stand-in for the `ovbuild` side of issue 8 (the `openvino` command): the merger switches
`add_openvino_variants` to that converter. It writes openvino_model.xml/.bin (model.onnx as fp32 IR),
optionally openvino_model_int8.xml/.bin (a small NNCF post-training quantization), and records each
variant's sha256, size and fidelity to fp32 on the package's sample texts; `bf16` is recorded as
measured here (or as told, to test the precision rule).
"""

from __future__ import annotations

from pathlib import Path

from distilbert_onnx.artifacts import sha256_file
from distilbert_onnx.checks.fidelity import calibration_batches, fidelity, reference_outputs
from distilbert_onnx.config import load_config
from distilbert_onnx.manifest import read_manifest, write_manifest
from distilbert_onnx.quantize_settings import QuantizeSettings
from distilbert_onnx.runtime.openvino_model import OpenVinoModel, native_bf16
from distilbert_onnx.runtime.session import OnnxModel
from distilbert_onnx.samples import sample_texts
from distilbert_onnx.tasks import get_task
from distilbert_onnx.variants import VARIANTS


def add_openvino_variants(folder: Path, int8: bool = True, int8_fidelity: dict | None = None,
                          bf16_meets_target: bool | None = None) -> Path:
    """Add the OpenVINO variants to `folder` (in place) and their manifest records.

    `int8_fidelity` replaces the measured int8 figures (to test a variant that misses its target);
    `bf16_meets_target` replaces the measured verdict on bf16.
    """
    import nncf
    import openvino as ov

    folder = Path(folder)
    manifest = read_manifest(folder).data
    spec, config = get_task(manifest["task"]), load_config(folder)
    batches = calibration_batches(folder, spec, config, sample_texts()[:24])
    expected = reference_outputs(OnnxModel(folder / VARIANTS["fp32"].file).run, batches)
    target = QuantizeSettings().for_task(spec)
    fp32_model = ov.convert_model(str(folder / VARIANTS["fp32"].file))
    ov.save_model(fp32_model, str(folder / VARIANTS["openvino"].file), compress_to_fp16=False)
    measured_bf16 = None
    if native_bf16():
        model = OpenVinoModel(folder / VARIANTS["openvino"].file, precision="bf16", cache=False)
        measured_bf16 = fidelity(expected, model.run, spec, batches)
    meets_target = target.meets(measured_bf16) if measured_bf16 else False
    bf16 = ({"fidelity": measured_bf16,
             "target": target.target.as_data(),
             "meets_target": meets_target if bf16_meets_target is None else bf16_meets_target}
            if measured_bf16 or bf16_meets_target is not None else {"fidelity": None, "reason": "no native bf16 on the exporting CPU"})
    model = OpenVinoModel(folder / VARIANTS["openvino"].file, cache=False)
    manifest["variants"]["openvino"] = _record(folder, "openvino", bf16=bf16, validation={
        "reference": "model.onnx", "passed": True, "max_abs_diff": fidelity(expected, model.run, spec, batches)["max_abs_diff"]})
    if int8:
        data = [batch.feeds for batch in batches]
        quantized = nncf.quantize(fp32_model, nncf.Dataset(data), model_type=nncf.ModelType.TRANSFORMER,
                                  subset_size=len(data))
        ov.save_model(quantized, str(folder / VARIANTS["openvino-int8"].file), compress_to_fp16=False)
        precision = "bf16" if native_bf16() else "f32"
        model = OpenVinoModel(folder / VARIANTS["openvino-int8"].file, precision=precision, stored="int8", cache=False)
        figures = int8_fidelity or fidelity(expected, model.run, spec, batches)
        manifest["variants"]["openvino-int8"] = _record(folder, "openvino-int8", fidelity=figures, inference_precision=precision, quantization={
            "method": "NNCF post-training static quantization",
            "target": target.target.as_data(),
            "kept_fp32": [], "calibration": {"texts": len(data), "source": "test sample"}})
    write_manifest(folder, manifest)
    return folder


def _record(folder: Path, name: str, **details) -> dict:
    xml = folder / VARIANTS[name].file
    weights = xml.with_suffix(".bin")
    return {"file": xml.name, "precision": VARIANTS[name].precision, "sha256": sha256_file(xml),
            "size_bytes": xml.stat().st_size + weights.stat().st_size,
            "weights": {"file": weights.name, "sha256": sha256_file(weights)}, **details}

