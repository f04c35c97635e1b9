"""The checks: a graph against its reference (probes.py), PyTorch (pytorch.py), fp32 (fidelity.py),
the fp16 graph on CUDA (fp16.py), the OpenVINO IRs (openvino.py) and a whole folder again (folder.py).

Below the builders (onnx_build/, openvino_build/, exporting/) and the front ends, above runtime/:
nothing here imports a builder.
"""
