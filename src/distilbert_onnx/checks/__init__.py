"""The checks: a graph against its reference (probes.py), PyTorch (pytorch.py), fp32 (fidelity.py),
the fp16 graph on CUDA (fp16.py), the OpenVINO IRs (openvino.py) and a whole folder again (folder.py);
task metrics on the user's labelled data (metrics, labelled, scoring, evaluation; the PyTorch
reference row comes from the caller, exporting/torch_pipeline.py), the metric gate of the int8 builds
(metric_gate.py), what an int8 build is asked to do (quantize_settings.py) and the user's data as
calibration rows (user_data.py).

Below the builders (onnx_build/, openvino_build/, exporting/) and the front ends, above runtime/:
nothing here imports a builder or a front end.
"""
