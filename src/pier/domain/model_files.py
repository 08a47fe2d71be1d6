"""Where an uploaded model lives under the data dir: content-addressed by SHA-256."""

from __future__ import annotations

from pathlib import Path

from pier.domain.specs import ModelFormat

_SUFFIX = {ModelFormat.ONNX: ".onnx", ModelFormat.SKLEARN: ".joblib"}
UNPACKED = frozenset({ModelFormat.PYTHON, ModelFormat.TRITON})
"""Formats pushed as a directory (a tar archive), kept unpacked."""


def example_path(models_dir: Path, sha256: str) -> Path:
    """The example request a model was pushed with, by the SHA-256 of its bytes."""
    return models_dir / "examples" / f"{sha256}.json"


def model_path(models_dir: Path, sha256: str, fmt: ModelFormat) -> Path:
    """The file (ONNX, scikit-learn) or directory (Python model, Triton model directory)
    a model server loads."""
    if fmt in UNPACKED:
        return models_dir / "unpacked" / sha256
    return models_dir / "blobs" / f"{sha256}{_SUFFIX[fmt]}"
