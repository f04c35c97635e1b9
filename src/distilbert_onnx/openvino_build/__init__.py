"""The OpenVINO build: the fp32 IR and its bf16 figure (build.py), the NNCF int8 IR meeting the
fidelity target (int8.py). Needs the [openvino-build] extra."""
