"""The built-in HTTP/1.1 server, in process, spoken to over raw sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import orjson
import pytest

from pier.modelserver import protocol
from pier.modelserver.__main__ import bind_socket
from pier.modelserver.app import ModelServerApp
from pier.modelserver.dataplane import DataPlane
from pier.modelserver.metrics import ModelServerMetrics

from .conftest import IrisModels

INFER_BODY = orjson.dumps(
    {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}
)
MAX_BODY_BYTES = 4096


@dataclass
class RunningServer:
    port: int
    stop: asyncio.Event


@pytest.fixture
async def server(iris: IrisModels) -> AsyncIterator[RunningServer]:
    dataplane = DataPlane(
        name="iris",
        version="1",
        fmt="onnx",
        path=iris.onnx_path,
        metrics=ModelServerMetrics("iris"),
    )
    dataplane.load()
    app = ModelServerApp(dataplane, max_body_bytes=MAX_BODY_BYTES)
    sock = bind_socket("127.0.0.1", 0)
    stop = asyncio.Event()
    serving = asyncio.create_task(protocol.serve(app, sock, stop, grace_s=0.5))
    yield RunningServer(sock.getsockname()[1], stop)
    stop.set()
    await serving


@pytest.fixture
def port(server: RunningServer) -> int:
    return server.port


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = {}
    for line in filter(None, lines):
        name, value = line.split(":", 1)
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(status_line.split()[1]), headers, body


def _post(path: str, body: bytes, extra: bytes = b"") -> bytes:
    return b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n%s\r\n%s" % (
        path.encode(),
        len(body),
        extra,
        body,
    )


async def test_pipelined_requests_are_answered_in_order(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"
        + _post("/v2/models/iris/infer", INFER_BODY)
        + b"GET /v2/models/ir%69s HTTP/1.1\r\nHost: x\r\n\r\n"  # percent-encoded path
    )

    live, infer, metadata = [await _read_response(reader) for _ in range(3)]

    assert live[0] == 200
    assert infer[0] == 200
    assert orjson.loads(infer[2])["outputs"][0]["name"] == "label"
    assert metadata[0] == 200
    assert orjson.loads(metadata[2])["name"] == "iris"
    writer.close()
    await writer.wait_closed()


async def test_expect_100_continue_and_chunked_bodies(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /v2/models/iris/infer HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
    half = len(INFER_BODY) // 2
    for chunk in (INFER_BODY[:half], INFER_BODY[half:]):
        writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    writer.write(b"0\r\n\r\n")

    status, _, body = await _read_response(reader)

    assert status == 200
    assert orjson.loads(body)["model_name"] == "iris"
    writer.close()
    await writer.wait_closed()


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /v2/health/live HTTP/1.0\r\n\r\n",
        b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ],
)
async def test_connection_closes_when_the_client_asks(port: int, request_bytes: bytes) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request_bytes)

    status, headers, _ = await _read_response(reader)

    assert status == 200
    assert headers["connection"] == "close"
    assert await reader.read() == b""
    writer.close()
    await writer.wait_closed()


async def test_malformed_request_gets_400_and_is_closed(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"NOT HTTP AT ALL\r\n\r\n")

    status, _, body = await _read_response(reader)

    assert status == 400
    assert orjson.loads(body) == {"error": "malformed HTTP request"}
    assert await reader.read() == b""
    writer.close()
    await writer.wait_closed()


async def test_body_over_the_limit_gets_413_and_the_connection_lives_on(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(_post("/v2/models/iris/infer", b" " * (MAX_BODY_BYTES + 1)))
    status, _, body = await _read_response(reader)
    assert status == 413
    assert "larger than" in orjson.loads(body)["error"]

    writer.write(_post("/v2/models/iris/infer", INFER_BODY))
    assert (await _read_response(reader))[0] == 200
    writer.close()
    await writer.wait_closed()


async def test_stop_closes_idle_connections(server: RunningServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await _read_response(reader))[0] == 200

    server.stop.set()

    assert await asyncio.wait_for(reader.read(), timeout=2) == b""
    writer.close()
    await writer.wait_closed()
