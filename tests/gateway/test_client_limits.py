"""The client limits: settings of `pier up`, flags of ``python -m pier.gateway``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from gateway_processes import free_port
from raw_http import RawClient

from pier.gateway.__main__ import parse_args
from pier.gateway.limits import ClientLimits
from pier.gateway_process import GatewayProcess
from pier.settings import GatewaySettings, Settings


def test_gateway_settings_and_the_gateway_agree_on_the_defaults() -> None:
    settings = GatewaySettings()
    defaults = ClientLimits()
    for field in dataclasses.fields(ClientLimits):
        assert getattr(settings, field.name) == getattr(defaults, field.name), field.name
    assert parse_args([]).client == defaults


def test_each_limit_has_a_flag() -> None:
    sizes = ["--max-request-line-bytes", "100", "--max-header-bytes", "200", "--max-headers", "3"]
    times = ["--header-timeout-s", "1.5", "--body-timeout-s", "2.5"]
    config = parse_args([*sizes, *times, "--max-pipelined-bytes", "7"])
    assert config.client == ClientLimits(100, 200, 3, 1.5, 2.5, 7)


def test_pier_up_passes_the_settings_to_the_gateway(tmp_path: Path) -> None:
    """The gateway `pier up` starts gets the limits of its settings (a short head timeout)."""
    settings = Settings(
        data_dir=tmp_path,
        port=free_port(),
        gateway=GatewaySettings(port=free_port(), header_timeout_s=0.5),
    )
    gateway = GatewayProcess(settings)
    gateway.ensure_running()
    try:
        with RawClient(settings.gateway.port) as client:
            client.send(b"GET /x HTTP/1.1\r\nhost: x\r\n")  # and nothing more
            response = client.read_response()
    finally:
        gateway.stop()
    assert response.status == 408
    message = response.json()["error"]
    assert "0.5 s" in message
    assert "header_timeout_s" in message
