"""Nothing listening at the URL gives one clear line, not a traceback (real closed ports)."""

from __future__ import annotations

import socket

import pytest
from typer.testing import CliRunner

import pier
from pier.cli.main import app


@pytest.fixture
def closed_url() -> str:
    """A URL on a port that was just free: nothing listens there."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_sdk_raises_control_plane_unreachable(closed_url: str) -> None:
    with (
        pier.Client(closed_url, token="t") as client,
        pytest.raises(pier.ControlPlaneUnreachable) as caught,
    ):
        client.list_nodes()
    assert caught.value.message == f"cannot reach pier at {closed_url}: is `pier up` running?"


def test_cli_prints_one_error_line_and_exits_1(closed_url: str) -> None:
    result = CliRunner().invoke(app, ["--url", closed_url, "--token", "t", "node", "list"])
    assert result.exit_code == 1
    assert result.stderr == f"error: cannot reach pier at {closed_url}: is `pier up` running?\n"
    assert result.stdout == ""


def test_cli_call_names_the_gateway_it_could_not_reach(closed_url: str) -> None:
    result = CliRunner().invoke(
        app, ["--token", "t", "call", "iris", "/v2/health/ready", "--gateway-url", closed_url]
    )
    assert result.exit_code == 1
    assert f"cannot reach the pier gateway at {closed_url}" in result.stderr
