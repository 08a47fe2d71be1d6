"""A compute-bound model for the benchmarks: an MLP 512→2048→2048→10 in ONNX.

Built with ``onnx.helper`` from seeded numpy weights (no training, no torch): about
5.2 M multiply-adds per row, so a call costs milliseconds on one core and a batch of
rows costs much less than as many calls. Input ``X`` [N, 512] FP32, output ``Y`` [N, 10].
"""

from __future__ import annotations

import itertools

import numpy as np

LAYERS = (512, 2048, 2048, 10)


def compute_model() -> tuple[bytes, list[float]]:
    """The serialized ONNX model and one input row."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, weights = [], []
    previous = "X"
    for index, (fan_in, fan_out) in enumerate(itertools.pairwise(LAYERS)):
        w = (rng.normal(size=(fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32)
        b = np.zeros(fan_out, dtype=np.float32)
        weights += [numpy_helper.from_array(w, f"w{index}")]
        weights += [numpy_helper.from_array(b, f"b{index}")]
        out = "Y" if index == len(LAYERS) - 2 else f"h{index}"
        gemm_out = out if out == "Y" else f"g{index}"
        nodes.append(helper.make_node("Gemm", [previous, f"w{index}", f"b{index}"], [gemm_out]))
        if out != "Y":
            nodes.append(helper.make_node("Relu", [gemm_out], [out]))
        previous = out
    graph = helper.make_graph(
        nodes,
        "mlp512",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", LAYERS[0]])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["N", LAYERS[-1]])],
        initializer=weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString(), rng.normal(size=LAYERS[0]).astype(np.float32).tolist()
