"""Model uploads to a real `pier up` are bounded: refused early from Content-Length,
counted while streamed, archives checked before they are unpacked, and a refused upload
leaves nothing behind under the models directory."""

from __future__ import annotations

import io
import socket
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import IrisModel, PierProcess, free_port

MiB = 2**20
UPLOAD_LIMIT = 4 * MiB
UNPACKED_LIMIT = 8 * MiB
FILES_LIMIT = 50
MODEL_PY = b"""
class Model:
    inputs = [{"name": "x", "datatype": "FP32", "shape": [-1]}]
    outputs = [{"name": "y", "datatype": "FP32", "shape": [-1]}]

    def load(self):
        pass

    def predict(self, inputs):
        return {"y": inputs["x"]}
"""
PUSH = "/api/v1/projects/default/models/m"


@pytest.fixture(scope="module")
def pier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PierProcess]:
    limits = {
        "PIER_MODELS__MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT),
        "PIER_MODELS__MAX_UNPACKED_BYTES": str(UNPACKED_LIMIT),
        "PIER_MODELS__MAX_FILES": str(FILES_LIMIT),
    }
    data_dir = tmp_path_factory.mktemp("uploads") / "data"
    process = PierProcess(data_dir, free_port(), free_port(), extra_env=limits)
    process.start()
    yield process
    process.stop()


def stored_files(pier: PierProcess) -> list[str]:
    """Everything under the models directory (tmp/, blobs/, unpacked/), as paths."""
    root = pier.data_dir / "models"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir())


def stored_dirs(pier: PierProcess) -> list[str]:
    """Directories under the models directory, but for its fixed layout."""
    root = pier.data_dir / "models"
    dirs = (str(p.relative_to(root)) for p in root.rglob("*") if p.is_dir())
    return sorted(d for d in dirs if d not in ("tmp", "blobs", "unpacked"))


def archive(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def link(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def zeros(name: str, size: int) -> tuple[tarfile.TarInfo, bytes]:
    return file(name, bytes(size))


def push(pier: PierProcess, body: bytes, fmt: str = "python") -> httpx.Response:
    with pier.api() as api:
        return api.post(PUSH, params={"format": fmt, "trust": "true"}, content=body)


def read_answer(sock: socket.socket) -> str:
    """One HTTP response with a Content-Length, read whole from a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return (head + b"\r\n\r\n" + body).decode()


def test_a_declared_length_over_the_limit_is_413_before_the_body_is_read(
    pier: PierProcess,
) -> None:
    before = stored_files(pier)
    head = (
        f"POST {PUSH}?format=onnx HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {pier.token}\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {UPLOAD_LIMIT + 1}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", pier.port), timeout=30) as sock:
        sock.sendall(head.encode())  # and not one byte of the body: the answer comes anyway
        answer = read_answer(sock)
    assert answer.startswith("HTTP/1.1 413"), answer
    assert "PIER_MODELS__MAX_UPLOAD_BYTES" in answer
    assert f'"limit_bytes":{UPLOAD_LIMIT}' in answer.replace(" ", "")
    assert stored_files(pier) == before


def test_a_chunked_upload_is_counted_and_refused_at_the_limit(pier: PierProcess) -> None:
    before, sent = stored_files(pier), 0

    def body() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(UPLOAD_LIMIT // MiB + 2):
            sent += MiB
            yield b"x" * MiB

    with pier.api() as api:
        refused = api.post(PUSH, params={"format": "onnx"}, content=body())
    assert "content-length" not in refused.request.headers
    assert refused.status_code == 413, refused.text
    error = refused.json()["error"]
    assert error["code"] == "body_too_large" and error["limit_bytes"] == UPLOAD_LIMIT
    assert sent > UPLOAD_LIMIT
    assert stored_files(pier) == before


@pytest.mark.parametrize(
    ("members", "status", "words"),
    [
        # unpacked size: a small archive of zeros that unpacks past the limit
        (
            [file("model.py", MODEL_PY), zeros("weights.bin", UNPACKED_LIMIT + 1)],
            413,
            "PIER_MODELS__MAX_UNPACKED_BYTES",
        ),
        (
            [file("model.py", MODEL_PY), *(file(f"f{i}.txt", b"") for i in range(FILES_LIMIT))],
            422,
            "PIER_MODELS__MAX_FILES",
        ),
        ([file("model.py", MODEL_PY), link("data", "/etc/passwd", tarfile.SYMTYPE)], 422, "link"),
        ([file("model.py", MODEL_PY), link("inner", "model.py", tarfile.SYMTYPE)], 422, "link"),
        ([file("model.py", MODEL_PY), link("hard", "model.py", tarfile.LNKTYPE)], 422, "link"),
        ([file("model.py", MODEL_PY), file("../../escaped.py", b"x")], 422, "outside"),
        ([file("model.py", MODEL_PY), file("/tmp/pier-absolute.py", b"x")], 422, "outside"),
        ([file("model.py", MODEL_PY), file("a/../../b.py", b"x")], 422, "outside"),
        ([file("other.py", MODEL_PY)], 422, "model.py"),
        ([file("model.py", b"raise SystemExit(3)\n")], 422, "not a loadable"),
    ],
)
def test_a_bad_python_archive_is_refused_and_leaves_nothing(
    pier: PierProcess,
    members: list[tuple[tarfile.TarInfo, bytes | None]],
    status: int,
    words: str,
) -> None:
    before = stored_files(pier), stored_dirs(pier)
    refused = push(pier, archive(*members))
    assert refused.status_code == status, refused.text
    assert words in refused.json()["error"]["message"]
    assert (stored_files(pier), stored_dirs(pier)) == before
    assert not (pier.data_dir / "escaped.py").exists()
    assert not Path("/tmp/pier-absolute.py").exists()


def test_a_file_that_is_no_archive_is_422(pier: PierProcess) -> None:
    before = stored_files(pier), stored_dirs(pier)
    refused = push(pier, b"not a tar at all" * 100)
    assert refused.status_code == 422, refused.text
    assert (stored_files(pier), stored_dirs(pier)) == before


def test_a_model_that_does_not_load_leaves_no_blob(pier: PierProcess) -> None:
    before = stored_files(pier)
    refused = push(pier, b"\x08\x07 this is no ONNX graph", fmt="onnx")
    assert refused.status_code == 422, refused.text
    assert stored_files(pier) == before


def test_a_good_model_is_stored_and_a_failed_push_of_the_same_bytes_keeps_it(
    pier: PierProcess, iris_onnx: IrisModel
) -> None:
    before = stored_files(pier)
    body = iris_onnx.path.read_bytes()
    assert push(pier, body, fmt="onnx").status_code == 201
    blob = sorted(set(stored_files(pier)) - set(before))
    assert len(blob) == 1 and blob[0].startswith("blobs/")
    good = push(pier, archive(file("model.py", MODEL_PY)))
    assert good.status_code == 201, good.text
    stored = stored_files(pier)
    assert any(path.startswith("unpacked/") and path.endswith("/model.py") for path in stored)
    assert push(pier, body, fmt="onnx").status_code == 201  # same bytes: one blob
    assert stored_files(pier) == stored


def test_the_cli_names_the_limit_and_the_setting(pier: PierProcess, tmp_path: Path) -> None:
    big = tmp_path / "big.onnx"
    big.write_bytes(bytes(UPLOAD_LIMIT + MiB))
    before = stored_files(pier)
    result = pier.cli("model", "push", str(big), "--name", "big", check=False)
    assert result.returncode == 1
    assert "big.onnx is over this pier's model upload size limit of 4 MiB" in result.stderr
    assert "PIER_MODELS__MAX_UPLOAD_BYTES" in result.stderr
    assert stored_files(pier) == before


def test_the_api_answers_while_a_large_model_is_unpacked(
    pier_factory: Callable[..., PierProcess],
) -> None:
    """A 200 MB Python model (a small archive of zeros) is unpacked and checked off the
    API's event loop: /healthz answers all along."""
    server = pier_factory("big")
    body = archive(file("model.py", MODEL_PY), zeros("weights.bin", 200 * MiB))
    pushed: list[httpx.Response] = []
    uploading = threading.Thread(target=lambda: pushed.append(push(server, body)))
    latencies: list[float] = []
    with httpx.Client(base_url=server.url, trust_env=False, timeout=30) as client:
        uploading.start()
        while uploading.is_alive():
            started = time.perf_counter()
            assert client.get("/healthz").status_code == 200
            latencies.append(time.perf_counter() - started)
            time.sleep(0.02)
    uploading.join()
    assert pushed[0].status_code == 201, pushed[0].text
    assert len(latencies) >= 5
    print(f"/healthz during the upload: {len(latencies)} polls, max {max(latencies) * 1000:.0f} ms")
    assert max(latencies) < 1.0  # a generous bound: the point is that it answers at all
