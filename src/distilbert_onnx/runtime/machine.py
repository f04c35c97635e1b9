"""What this machine is, as the auto choice, the benchmark and the build records name it: the CPU's
model name and its instruction-set flags (from /proc/cpuinfo; the platform's name elsewhere)."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name ("Intel(R) Xeon(R) Platinum 8480+", "AMD EPYC 9R14 96-Core Processor")."""
    for line in _cpuinfo():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    """The CPU's instruction-set flags (avx2, avx512_vnni, amx_int8, ...); empty where unknown."""
    for line in _cpuinfo():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    return set()


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []
