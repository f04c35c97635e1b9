"""The checks: a graph against its reference (probes.py), PyTorch (pytorch.py), fp32 (fidelity.py),
the fp16 graph on CUDA (fp16.py), the OpenVINO IRs (openvino.py) and a whole folder again (folder.py);
task metrics on the user's labelled data (metrics, labelled, scoring, evaluation; torch_model for the
PyTorch reference row), the metric gate of the int8 builds (metric_gate.py) and the user's data as
calibration rows (user_data.py).

Below the builders (onnx_build/, openvino_build/, exporting/) and the front ends, above runtime/:
nothing here imports a builder.
"""
