"""Dynamic batching: concurrent requests run as one model call; each caller gets its rows.

With one worker, the first request holds the worker inside the gated model's
``predict``; the others arrive meanwhile (the server's gauge of requests held says
when all have) and wait for the worker, so they run together once the gate opens.
On one CPU, one batch runs at a time however many workers the server has (a second
batch could only share the CPU, and splitting the waiting requests between two
batches makes each smaller).
"""

from __future__ import annotations

import concurrent.futures
import re
from pathlib import Path

import httpx

from .conftest import ModelServer, StartModelServer
from .test_modelserver_slow_models import entered, gated_model, infer_body, outputs, post, wait_for

_HELD = re.compile(rb"^\w*inference_requests_held\{[^}]*\} (\S+)$", re.M)
CALLERS = 12


def held(server: ModelServer) -> int:
    """Inference requests the server holds: running, or waiting for the worker."""
    metrics = httpx.get(f"{server.url}/metrics").content
    match = _HELD.search(metrics)
    assert match is not None, metrics
    return int(float(match[1]))


def hold_the_worker_then_send(
    server: ModelServer, directory: Path, bodies: list[dict[str, object]], *, refused: int = 0
) -> list[httpx.Response]:
    """Send a first request that blocks the worker, then ``bodies`` at once; open the gate
    once all but the ``refused`` ones (answered at once) wait."""
    with concurrent.futures.ThreadPoolExecutor(len(bodies) + 1) as callers:
        first = callers.submit(post, server, "batched", infer_body([[100.0, 0.5]]))
        wait_for(lambda: entered(directory) == 1)
        calls = [callers.submit(post, server, "batched", body) for body in bodies]
        wait_for(lambda: held(server) == len(bodies) - refused + 1)
        (directory / "go").touch()
        assert outputs(first.result())["y"] == [100.5]
        return [call.result() for call in calls]


def test_on_one_cpu_the_waiting_requests_run_as_one_batch_whatever_the_workers(
    tmp_path: Path, start_model_server: StartModelServer
) -> None:
    directory = gated_model(tmp_path)
    server = start_model_server(
        "batched", "python", directory, "--workers", "2", "--max-batch-size", "64",
        prefix=("taskset", "-c", "0"),
    )  # fmt: skip
    bodies = [infer_body([[i, 0.5]]) for i in range(1, CALLERS + 1)]
    responses = hold_the_worker_then_send(server, directory, bodies)

    for i, response in enumerate(responses, start=1):
        assert outputs(response)["y"] == [i + 0.5]
        assert outputs(response)["rows"] == [CALLERS]
    assert entered(directory) == 2  # the held request, then all the others at once


def test_concurrent_callers_are_batched_and_each_gets_exactly_its_rows(
    tmp_path: Path, start_model_server: StartModelServer
) -> None:
    directory = gated_model(tmp_path)
    server = start_model_server(
        "batched", "python", directory, "--workers", "1", "--max-batch-size", "64"
    )
    bodies = [infer_body([[i, 0.25]] * (1 + i % 3)) for i in range(1, CALLERS + 1)]
    responses = hold_the_worker_then_send(server, directory, bodies)

    for i, response in enumerate(responses, start=1):
        result = outputs(response)
        assert result["y"] == [i + 0.25] * (1 + i % 3)  # its own rows, all of them
        assert result["rows"][0] == sum(1 + k % 3 for k in range(1, CALLERS + 1))  # one call
    assert entered(directory) == 2  # the held request, then all the others at once


def test_a_request_with_a_wrong_shape_or_bad_values_fails_alone(
    tmp_path: Path, start_model_server: StartModelServer
) -> None:
    directory = gated_model(tmp_path)
    server = start_model_server(
        "batched", "python", directory, "--workers", "1", "--max-batch-size", "64"
    )
    good = [infer_body([[i, 1.0]]) for i in range(1, 6)]
    wrong_shape = {
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3]}]
    }
    negative = infer_body([[-1.0, 1.0]])  # predict() raises ValueError for it
    bodies = [*good[:2], wrong_shape, *good[2:4], negative, good[4]]
    responses = hold_the_worker_then_send(server, directory, bodies, refused=1)

    assert responses[2].status_code == 400
    assert "shape" in responses[2].json()["error"]
    assert responses[5].status_code == 400
    assert "negative" in responses[5].json()["error"]
    answered = [outputs(responses[i])["y"] for i in (0, 1, 3, 4, 6)]
    assert answered == [[2.0], [3.0], [4.0], [5.0], [6.0]]


def test_batches_hold_at_most_max_batch_size_rows(
    tmp_path: Path, start_model_server: StartModelServer
) -> None:
    directory = gated_model(tmp_path)
    server = start_model_server(
        "batched", "python", directory, "--workers", "1", "--max-batch-size", "4"
    )
    responses = hold_the_worker_then_send(
        server, directory, [infer_body([[i, 0.0]]) for i in range(1, 11)]
    )

    assert [outputs(r)["y"] for r in responses] == [[float(i)] for i in range(1, 11)]
    assert max(outputs(r)["rows"][0] for r in responses) == 4
