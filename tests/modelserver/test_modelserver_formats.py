"""scikit-learn and Python model formats, served and described without a server."""

from __future__ import annotations

from pathlib import Path

import httpx
import joblib
import numpy as np
import pytest
import tritonclient.http as triton
from sklearn.linear_model import LinearRegression, LogisticRegression

from pier.modelserver.loaders import describe_model, detect_format
from pier.modelserver.loaders.python import ModelClassError

from .conftest import IrisModels, StartModelServer

PYTHON_MODEL = """
import numpy as np

from helper import SCALE  # a module next to model.py


class Scaler:
    inputs = [
        {"name": "x", "datatype": "FP64", "shape": [-1, 3]},
        ("words", "BYTES", [-1]),
    ]
    outputs = [
        {"name": "scaled", "datatype": "FP32", "shape": [-1, 3]},
        {"name": "shout", "datatype": "BYTES", "shape": [-1]},
        {"name": "calls", "datatype": "INT64", "shape": [1]},
    ]

    def load(self):
        self.calls = 0

    def predict(self, inputs):
        self.calls += 1
        words = [w.decode().upper() for w in inputs["words"]]
        return {"scaled": inputs["x"] * SCALE, "shout": words, "calls": [self.calls]}
"""


@pytest.fixture
def python_model(tmp_path: Path) -> Path:
    directory = tmp_path / "scaler"
    directory.mkdir()
    (directory / "model.py").write_text(PYTHON_MODEL)
    (directory / "helper.py").write_text("SCALE = 2\n")
    return directory


def test_python_model_directory_is_served(
    python_model: Path, start_model_server: StartModelServer
) -> None:
    server = start_model_server("scaler", "python", python_model)
    client = triton.InferenceServerClient(server.address)
    try:
        x = np.arange(6, dtype=np.float64).reshape(2, 3)
        words = np.array([b"hi", "h\u00e9".encode()], dtype=np.object_)
        inputs = [triton.InferInput("x", [2, 3], "FP64"), triton.InferInput("words", [2], "BYTES")]
        inputs[0].set_data_from_numpy(x)
        inputs[1].set_data_from_numpy(words)

        first = client.infer("scaler", inputs)
        second = client.infer("scaler", inputs)

        np.testing.assert_array_equal(first.as_numpy("scaled"), (x * 2).astype(np.float32))
        assert first.as_numpy("shout").tolist() == [b"HI", "H\u00c9".encode()]
        # state is kept between calls (the warm-up inference was the first call)
        assert second.as_numpy("calls")[0] == first.as_numpy("calls")[0] + 1
    finally:
        client.close()
    with httpx.Client(base_url=server.url) as http:
        response = http.post(
            "/v2/models/scaler/infer",
            json={
                "inputs": [
                    {"name": "x", "datatype": "FP64", "shape": [1, 3], "data": [1, 2, 3]},
                    {"name": "words", "datatype": "BYTES", "shape": [1], "data": ["ok"]},
                ],
                "outputs": [{"name": "shout"}],
            },
        )
    assert response.json()["outputs"] == [
        {"name": "shout", "datatype": "BYTES", "shape": [1], "data": ["OK"]}
    ]


def test_describe_model_without_a_server(iris: IrisModels, python_model: Path) -> None:
    onnx = describe_model(iris.onnx_path, "onnx")
    assert onnx["platform"] == "onnxruntime_onnx"
    assert onnx["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]

    python = describe_model(python_model, "python")
    assert python["inputs"][1] == {"name": "words", "datatype": "BYTES", "shape": [-1]}


def test_sklearn_metadata_conventions(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(20, 3))
    classifier = LogisticRegression().fit(x, np.where(x[:, 0] > 0, "yes", "no"))
    regressor = LinearRegression().fit(x, x.sum(axis=1))
    joblib.dump(classifier, tmp_path / "classifier.pkl")
    joblib.dump(regressor, tmp_path / "regressor.joblib")

    described = describe_model(tmp_path / "classifier.pkl", "sklearn")
    assert described["outputs"] == [
        {"name": "label", "datatype": "BYTES", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP64", "shape": [-1, 2]},
    ]
    assert describe_model(tmp_path / "regressor.joblib", "sklearn")["outputs"] == [
        {"name": "label", "datatype": "FP64", "shape": [-1]}
    ]


def test_detect_format(tmp_path: Path, python_model: Path) -> None:
    assert detect_format(Path("m.onnx")) == "onnx"
    assert detect_format(Path("m.joblib")) == "sklearn"
    assert detect_format(Path("m.PKL")) == "sklearn"
    assert detect_format(Path("m.pickle")) == "sklearn"
    assert detect_format(python_model) == "python"
    assert detect_format(tmp_path / "empty-dir-or-missing") is None
    assert detect_format(Path("m.pt")) is None


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("class A:\n    pass\n", "found: none"),
        (
            "class A:\n    def load(self): ...\n    def predict(self, i): ...\n"
            "class B(A):\n    pass\n",
            "found: A, B",
        ),
        (
            "class Model:\n    inputs = []\n    outputs = []\n"
            "    def load(self): ...\n    def predict(self, i): ...\n",
            "Model.inputs must list its tensors",
        ),
        (
            "class Model:\n    inputs = [{'name': 'x', 'datatype': 'FP32'}]\n    outputs = []\n"
            "    def load(self): ...\n    def predict(self, i): ...\n",
            "is not a tensor",
        ),
        (
            "class Model:\n    inputs = [('x', 'FLOAT', [1])]\n    outputs = []\n"
            "    def load(self): ...\n    def predict(self, i): ...\n",
            "unknown datatype 'FLOAT'",
        ),
    ],
)
def test_python_model_contract_errors(tmp_path: Path, source: str, message: str) -> None:
    (tmp_path / "model.py").write_text(source)

    with pytest.raises(ModelClassError, match=message):
        describe_model(tmp_path, "python")
