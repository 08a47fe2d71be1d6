"""The data plane in process: how model failures map to V2 errors."""

from __future__ import annotations

from pathlib import Path

import onnx
import orjson
import pytest
from onnx import TensorProto, helper

from pier.modelserver.dataplane import DataPlane
from pier.modelserver.metrics import ModelServerMetrics
from pier.modelserver.v2 import BadRequest, InferenceFailed
from pier.modelserver.warmup import WarmUpFailed
from tests.triton_models import write_model

PICKY_MODEL = """
class Model:
    inputs = [{"name": "word", "datatype": "BYTES", "shape": [1]}]
    outputs = [{"name": "length", "datatype": "INT64", "shape": [1]}]

    def load(self):
        pass

    def predict(self, inputs):
        word = inputs["word"][0].decode()
        if word != "hello":
            raise ValueError(f"unknown word {word!r}")
        return {"length": [len(word)]}
"""

FAILING_MODEL = """
class Model:
    inputs = [{"name": "x", "datatype": "INT64", "shape": [1]}]
    outputs = [{"name": "y", "datatype": "INT64", "shape": [1]}]

    def load(self):
        pass

    def predict(self, inputs):
        x = int(inputs["x"][0])
        if x == 1:
            raise ValueError("x must not be 1")
        if x == 2:
            raise RuntimeError("the model broke")
        if x == 3:
            return {"z": [0]}
        return {"y": [x]}
"""


def _dataplane(path: Path, fmt: str) -> DataPlane:
    dataplane = DataPlane(
        name="m", version="1", fmt=fmt, path=path, metrics=ModelServerMetrics("m")
    )
    dataplane.load()
    return dataplane


def _infer(dataplane: DataPlane, inputs: list[dict]) -> dict:
    body, header_length = dataplane.infer("m", None, orjson.dumps({"inputs": inputs}), None)
    assert header_length is None
    return orjson.loads(body)


def test_python_model_errors_map_to_400_and_500(tmp_path: Path) -> None:
    (tmp_path / "model.py").write_text(FAILING_MODEL)
    dataplane = _dataplane(tmp_path, "python")

    def x(value: int) -> list[dict]:
        return [{"name": "x", "datatype": "INT64", "shape": [1], "data": [value]}]

    assert _infer(dataplane, x(5))["outputs"][0]["data"] == [5]
    with pytest.raises(BadRequest, match="x must not be 1"):
        _infer(dataplane, x(1))
    with pytest.raises(InferenceFailed, match="RuntimeError: the model broke"):
        _infer(dataplane, x(2))
    with pytest.raises(InferenceFailed, match="returned no output 'y'"):
        _infer(dataplane, x(3))


def test_onnx_runtime_rejections_are_400(tmp_path: Path) -> None:
    spec = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 2]) for n in "ab"]
    out = helper.make_tensor_value_info("sum", TensorProto.FLOAT, ["N", 2])
    graph = helper.make_graph([helper.make_node("Add", ["a", "b"], ["sum"])], "add", spec, [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "add.onnx")
    dataplane = _dataplane(tmp_path / "add.onnx", "onnx")

    def tensor(name: str, rows: int) -> dict:
        return {"name": name, "datatype": "FP32", "shape": [rows, 2], "data": [1.0] * rows * 2}

    assert _infer(dataplane, [tensor("a", 2), tensor("b", 2)])["outputs"][0]["data"] == [2.0] * 4
    with pytest.raises(BadRequest, match="inference failed"):
        _infer(dataplane, [tensor("a", 2), tensor("b", 3)])
    with pytest.raises(BadRequest, match="missing input"):
        _infer(dataplane, [tensor("a", 2)])


def test_a_failing_warm_up_fails_the_load(tmp_path: Path) -> None:
    (tmp_path / "model.py").write_text(FAILING_MODEL.replace("x == 3", "x == 0"))
    dataplane = DataPlane(
        name="m", version="1", fmt="python", path=tmp_path, metrics=ModelServerMetrics("m")
    )

    with pytest.raises(WarmUpFailed, match="returned no output 'y'"):
        dataplane.load()
    assert dataplane.state == "failed"
    assert not dataplane.is_ready


def test_a_bytes_model_that_parses_its_strings_warms_up(tmp_path: Path) -> None:
    dataplane = _dataplane(write_model(tmp_path, "simple_string"), "python")
    numbers = [str(i) for i in range(16)]
    inputs = [
        {"name": name, "datatype": "BYTES", "shape": [1, 16], "data": numbers}
        for name in ("INPUT0", "INPUT1")
    ]
    outputs = {o["name"]: o["data"] for o in _infer(dataplane, inputs)["outputs"]}
    assert outputs["OUTPUT0"] == [str(2 * i) for i in range(16)]
    assert outputs["OUTPUT1"] == ["0"] * 16


def test_a_model_refusing_every_derived_input_says_why_and_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "model.py").write_text(PICKY_MODEL)
    dataplane = DataPlane(
        name="m", version="1", fmt="python", path=tmp_path, metrics=ModelServerMetrics("m")
    )
    with pytest.raises(WarmUpFailed) as caught:
        dataplane.load()
    assert "unknown word '0'" in str(caught.value) and "unknown word ''" in str(caught.value)
    assert "pier model push --example" in str(caught.value)
    assert dataplane.state == "failed"


def test_an_example_request_is_the_warm_up(tmp_path: Path) -> None:
    (tmp_path / "model.py").write_text(PICKY_MODEL)

    def load(word: str) -> DataPlane:
        request = {"inputs": [{"name": "word", "datatype": "BYTES", "shape": [1], "data": [word]}]}
        dataplane = DataPlane(
            name="m",
            version="1",
            fmt="python",
            path=tmp_path,
            metrics=ModelServerMetrics("m"),
            example=orjson.dumps(request),
        )
        dataplane.load()
        return dataplane

    assert load("hello").is_ready
    with pytest.raises(WarmUpFailed, match=r"on its example request failed: .*unknown word 'bye'"):
        load("bye")
