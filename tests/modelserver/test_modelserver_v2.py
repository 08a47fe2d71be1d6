"""The V2 codec on its own: every datatype through JSON and binary, read by tritonclient."""

from __future__ import annotations

import numpy as np
import pytest
import tritonclient.http as triton

from pier.modelserver.v2 import (
    DATATYPES,
    BadRequest,
    TensorSpec,
    encode_response,
    tensor_from_binary,
    tensor_from_json,
)

SAMPLES = {
    "BOOL": np.array([[True, False, True]]),
    "UINT8": np.array([[0, 7, 255]], dtype=np.uint8),
    "INT32": np.array([[-1, 0, 2**31 - 1]], dtype=np.int32),
    "INT64": np.array([[-(2**40), 0, 2**40]], dtype=np.int64),
    "FP16": np.array([[0.5, -1.25, 3.0]], dtype=np.float16),
    "FP32": np.array([[0.1, -2.5, 1e-8]], dtype=np.float32),
    "FP64": np.array([[0.1, -2.5, 1e300]], dtype=np.float64),
    "BYTES": np.array([[b"a", b"", "\u00e9".encode()]], dtype=np.object_),
}


@pytest.mark.parametrize("datatype", sorted(SAMPLES))
@pytest.mark.parametrize("binary", [True, False])
def test_outputs_round_trip_through_tritonclient(datatype: str, binary: bool) -> None:
    array = SAMPLES[datatype]
    body, header_length = encode_response(
        {"model_name": "m", "model_version": "1"}, [("out", datatype, array, binary)]
    )

    result = triton.InferResult.from_response_body(body, header_length=header_length)

    assert (header_length is not None) == binary
    decoded = result.as_numpy("out")
    assert decoded.shape == array.shape
    if datatype == "BYTES":  # tritonclient gives str for JSON, bytes for binary
        expected = array if binary else np.vectorize(bytes.decode, otypes=[object])(array)
        assert decoded.tolist() == expected.tolist()
    else:
        np.testing.assert_array_equal(decoded, array)


@pytest.mark.parametrize("datatype", sorted(SAMPLES))
def test_inputs_decode_from_json_and_binary(datatype: str) -> None:
    array = SAMPLES[datatype]
    infer_input = triton.InferInput("x", list(array.shape), datatype)
    infer_input.set_data_from_numpy(array, binary_data=True)
    raw = infer_input._get_binary_data()

    from_binary = tensor_from_binary(datatype, array.shape, memoryview(raw), 0, len(raw))
    json_data = [[x.decode() for x in array[0]]] if datatype == "BYTES" else array.tolist()
    from_json = tensor_from_json(datatype, array.shape, json_data)

    for decoded in (from_binary, from_json):
        assert decoded.dtype == DATATYPES[datatype]
        assert decoded.shape == array.shape
        assert decoded.tolist() == array.tolist()


def test_binary_sizes_are_checked() -> None:
    with pytest.raises(BadRequest, match="needs 12 bytes"):
        tensor_from_binary("FP32", [1, 3], memoryview(b"\0" * 16), 0, 8)
    with pytest.raises(BadRequest, match="truncated"):
        tensor_from_binary("BYTES", [1], memoryview(b"\x05\0\0\0ab"), 0, 6)


def test_spec_shapes_and_examples() -> None:
    spec = TensorSpec("x", "FP32", (-1, 4))
    assert spec.accepts_shape([7, 4])
    assert not spec.accepts_shape([7, 5])
    assert not spec.accepts_shape([4])
    assert spec.example().shape == (1, 4)
    assert TensorSpec("s", "BYTES", (-1,)).example().tolist() == [b""]
    with pytest.raises(ValueError, match="unknown datatype"):
        TensorSpec("x", "FLOAT", (1,))
