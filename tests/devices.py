"""Which devices this machine has, and the marks for tests that depend on it.

A test that needs CUDA is skipped, with the reason, where onnxruntime has no CUDA provider; a test of
what happens without CUDA is skipped where there is one. Neither passes by accident.
"""

from __future__ import annotations

import onnxruntime as ort
import pytest

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
HAS_CUDA = CUDA in ort.get_available_providers()

needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs onnxruntime-gpu and a GPU")
without_cuda = pytest.mark.skipif(HAS_CUDA, reason="checks what happens without CUDA, and this machine has it")

