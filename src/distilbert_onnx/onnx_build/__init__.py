"""The onnxruntime build: the fused graph (optimize.py) and the int8 graph (quantize.py with its
accuracy search, simulation and writer), each checked by checks/ before it is recorded."""
