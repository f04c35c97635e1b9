"""Optimum-Intel loads our folders: each FOLDER's OpenVINO IRs through its OVModelFor... class.

Run with the Optimum environment's Python (optimum-intel[openvino]); the folders are made by our
export beforehand (see bench/README.md). For each IR: the class that loads it, and the largest
difference of its outputs from model.onnx run by onnxruntime on the same tokenized texts.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from transformers import AutoTokenizer

import optimum.intel as intel

# config.json architecture -> Optimum-Intel class (multiple choice has none in optimum-intel).
CLASSES = {
    "DistilBertModel": "OVModelForFeatureExtraction",
    "DistilBertForSequenceClassification": "OVModelForSequenceClassification",
    "DistilBertForTokenClassification": "OVModelForTokenClassification",
    "DistilBertForQuestionAnswering": "OVModelForQuestionAnswering",
    "DistilBertForMaskedLM": "OVModelForMaskedLM",
    "DistilBertForMultipleChoice": None,
}
TEXTS = ["Paris is the capital of France.", "The battery died after an hour, which was a shame."]


def check(folder: Path) -> list[str]:
    architecture = json.loads((folder / "config.json").read_text())["architectures"][0]
    name = CLASSES[architecture]
    if name is None:
        return [f"{folder.name}: {architecture}: Optimum-Intel has no OVModel class for it"]
    tokens = AutoTokenizer.from_pretrained(folder)(TEXTS, padding=True, return_tensors="np")
    feeds = {key: tokens[key] for key in ("input_ids", "attention_mask")}
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    expected = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
    lines = []
    for file_name in ("openvino_model.xml", "openvino_model_int8.xml"):
        if not (folder / file_name).exists():
            continue
        try:
            model = getattr(intel, name).from_pretrained(folder, file_name=file_name, ov_config={"INFERENCE_PRECISION_HINT": "f32"})
            outputs = model(**feeds)
            diff = max(float(np.abs(np.asarray(outputs[key]) - value).max()) for key, value in expected.items())
            lines.append(f"{folder.name}: {file_name} loaded by {name}; max abs diff to model.onnx {diff:.2e}")
        except Exception as exc:  # report every folder, whatever fails
            lines.append(f"{folder.name}: {file_name} NOT loaded by {name}: {type(exc).__name__}: {str(exc)[:200]}")
    return lines


if __name__ == "__main__":
    for argument in sys.argv[1:]:
        for line in check(Path(argument)):
            print(line)
