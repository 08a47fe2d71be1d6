"""PyTriton serving the benchmark's compute-bound ONNX model, with its dynamic batcher.

Run with a Python that has ``nvidia-pytriton`` and ``onnxruntime`` (not pier's
environment: PyTriton pins its own dependencies):

    python bench/_pytriton_server.py MODEL.onnx HTTP_PORT GRPC_PORT METRICS_PORT

Serves model ``big`` (input ``X`` [-1, 512], output ``Y``) over Triton's HTTP API on
HTTP_PORT; onnxruntime runs it with one intra-op thread per call, as pier's model
server does on one CPU.
"""

from __future__ import annotations

import sys

import numpy as np
import onnxruntime as ort
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig

MAX_BATCH_SIZE = 32


def main() -> None:
    path = sys.argv[1]
    http_port, grpc_port, metrics_port = (int(port) for port in sys.argv[2:5])
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    @batch
    def infer(X: np.ndarray) -> dict[str, np.ndarray]:
        return {"Y": session.run(["Y"], {"X": X})[0]}

    config = TritonConfig(http_port=http_port, grpc_port=grpc_port, metrics_port=metrics_port)
    with Triton(config=config) as triton:
        triton.bind(
            model_name="big",
            infer_func=infer,
            inputs=[Tensor(name="X", dtype=np.float32, shape=(512,))],
            outputs=[Tensor(name="Y", dtype=np.float32, shape=(10,))],
            config=ModelConfig(max_batch_size=MAX_BATCH_SIZE, batcher=DynamicBatcher()),
        )
        print("pytriton serving", flush=True)
        triton.serve()


if __name__ == "__main__":
    main()
