"""The checks: a graph against its reference (probes.py), PyTorch (pytorch.py), fp32 (fidelity.py),
the fp16 graph on CUDA (fp16.py), the OpenVINO IRs (openvino.py) and a whole folder again (folder.py);
and the task's own metric on the user's labelled data (metrics.py, labelled.py, scoring.py,
evaluation.py; torch_model.py runs the PyTorch checkpoint through a pipeline).

Below the builders (onnx_build/, openvino_build/, exporting/) and the front ends, above runtime/:
nothing here imports a builder.
"""
