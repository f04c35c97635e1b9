"""Versions of this package and the tools it used, for manifests and benchmark reports."""

from __future__ import annotations

from importlib import metadata

TOOLS = ("distilbert-onnx", "onnxruntime", "onnxruntime-gpu", "onnx", "torch", "tokenizers", "numpy", "openvino", "nncf")


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def this_version() -> str:
    """This package's installed version ("0+unknown" when it runs from a source tree not installed)."""
    return package_version("distilbert-onnx") or "0+unknown"


def tool_versions() -> dict[str, str]:
    """Installed versions of the tools in TOOLS (those not installed are left out)."""
    versions = {name: package_version(name) for name in TOOLS}
    return {name: version for name, version in versions.items() if version}
