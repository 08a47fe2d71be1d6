"""A scikit-learn model saved with joblib, served (the server started with the session)."""

from __future__ import annotations

import numpy as np
import tritonclient.http as triton

from .conftest import IrisModels, ModelServer


def test_sklearn_joblib_model_is_served(sklearn_server: ModelServer, iris: IrisModels) -> None:
    sklearn_server.wait_ready()
    client = triton.InferenceServerClient(sklearn_server.address)
    try:
        metadata = client.get_model_metadata("iris-sk")
        assert metadata["platform"] == "sklearn"
        assert metadata["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
        assert metadata["outputs"] == [
            {"name": "label", "datatype": "INT64", "shape": [-1]},
            # trained on float32, so predict_proba answers float32 for FP32 input
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]},
        ]
        infer_input = triton.InferInput("input", list(iris.x.shape), "FP32")
        infer_input.set_data_from_numpy(iris.x)

        result = client.infer("iris-sk", [infer_input])

        np.testing.assert_array_equal(result.as_numpy("label"), iris.clf.predict(iris.x))
        np.testing.assert_allclose(
            result.as_numpy("probabilities"), iris.clf.predict_proba(iris.x), rtol=1e-6
        )
        label_only = client.infer(
            "iris-sk", [infer_input], outputs=[triton.InferRequestedOutput("label")]
        )
        assert label_only.as_numpy("probabilities") is None
    finally:
        client.close()
