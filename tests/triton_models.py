"""Python models built to the expectations of Triton's example clients.

``simple``: INPUT0 and INPUT1, INT32 ``[-1, 16]`` -> OUTPUT0 (sum) and OUTPUT1
(difference). ``simple_string``: the same on BYTES tensors whose elements are the
decimal text of integers (it parses them, so a warm-up on empty strings fails it).
``simple_identity``: one BYTES input, echoed.
"""

from __future__ import annotations

from pathlib import Path

SIMPLE = """
import numpy as np


class Model:
    inputs = [
        {"name": "INPUT0", "datatype": "INT32", "shape": [-1, 16]},
        {"name": "INPUT1", "datatype": "INT32", "shape": [-1, 16]},
    ]
    outputs = [
        {"name": "OUTPUT0", "datatype": "INT32", "shape": [-1, 16]},
        {"name": "OUTPUT1", "datatype": "INT32", "shape": [-1, 16]},
    ]

    def load(self):
        pass

    def predict(self, inputs):
        a, b = inputs["INPUT0"], inputs["INPUT1"]
        return {"OUTPUT0": a + b, "OUTPUT1": a - b}
"""

SIMPLE_STRING = """
import numpy as np


def numbers(array):
    return np.vectorize(lambda item: int(item.decode()), otypes=[np.int64])(array)


def text(array):
    return np.vectorize(lambda item: str(item).encode(), otypes=[object])(array)


class Model:
    inputs = [
        {"name": "INPUT0", "datatype": "BYTES", "shape": [-1, 16]},
        {"name": "INPUT1", "datatype": "BYTES", "shape": [-1, 16]},
    ]
    outputs = [
        {"name": "OUTPUT0", "datatype": "BYTES", "shape": [-1, 16]},
        {"name": "OUTPUT1", "datatype": "BYTES", "shape": [-1, 16]},
    ]

    def load(self):
        pass

    def predict(self, inputs):
        a, b = numbers(inputs["INPUT0"]), numbers(inputs["INPUT1"])
        return {"OUTPUT0": text(a + b), "OUTPUT1": text(a - b)}
"""

SIMPLE_IDENTITY = """
class Model:
    inputs = [{"name": "INPUT0", "datatype": "BYTES", "shape": [-1, -1]}]
    outputs = [{"name": "OUTPUT0", "datatype": "BYTES", "shape": [-1, -1]}]

    def load(self):
        pass

    def predict(self, inputs):
        return {"OUTPUT0": inputs["INPUT0"]}
"""

SOURCES = {"simple": SIMPLE, "simple_string": SIMPLE_STRING, "simple_identity": SIMPLE_IDENTITY}


def write_model(directory: Path, name: str) -> Path:
    """The model directory of ``name`` (one of :data:`SOURCES`) under ``directory``."""
    path = directory / name
    path.mkdir(parents=True, exist_ok=True)
    (path / "model.py").write_text(SOURCES[name])
    return path
