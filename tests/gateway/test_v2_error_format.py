"""Gateway errors in the V2 error format: ``tritonclient`` prints them, pier's details
(code, type, project, node or alias) sit beside the message."""

from __future__ import annotations

import numpy as np
import pytest
import tritonclient.http as triton
from gateway_processes import TOKEN, Gateway
from tritonclient.utils import InferenceServerException

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def client_for(gateway: Gateway, route: str) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(f"127.0.0.1:{gateway.port}/default/{route}")


def refusal(call: object) -> str:
    with pytest.raises(InferenceServerException) as caught:
        call()  # type: ignore[operator]
    return str(caught.value)


def test_tritonclient_prints_a_404_for_an_unknown_node(gateway: Gateway) -> None:
    client = client_for(gateway, "nodes/nope")
    printed = refusal(lambda: client.get_model_metadata("m", headers=AUTH))
    assert printed.startswith("[404] ") and "nope" in printed
    client.close()


def test_tritonclient_prints_a_503_for_a_node_without_instances(gateway: Gateway) -> None:
    client = client_for(gateway, "nodes/empty")
    printed = refusal(client.get_server_metadata)
    assert printed.startswith("[503] ") and "no Healthy instance" in printed
    client.close()


def test_tritonclient_prints_a_413_for_a_body_over_the_nodes_limit(gateway: Gateway) -> None:
    client = client_for(gateway, "nodes/small")
    tensor = triton.InferInput("x", [1, 500], "FP32")
    tensor.set_data_from_numpy(np.zeros((1, 500), dtype=np.float32))
    printed = refusal(lambda: client.infer("m", [tensor]))
    assert printed.startswith("[413] ") and "1000" in printed
    client.close()


def test_details_sit_beside_the_message(gateway: Gateway) -> None:
    with gateway.client() as client:
        node = client.get("/default/nodes/nope/v2", headers=AUTH)
        alias = client.get("/default/aliases/ghost/v2", headers=AUTH)
    assert node.json() == {
        "error": node.json()["error"],
        "code": "not_found",
        "type": "node_not_found",
        "project": "default",
        "node": "nope",
    }
    assert isinstance(alias.json()["error"], str)
    assert alias.json()["alias"] == "ghost" and alias.json()["project"] == "default"
