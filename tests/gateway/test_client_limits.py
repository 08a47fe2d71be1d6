"""The client limits: settings of `pier up`, flags of ``python -m pier.gateway``."""

from __future__ import annotations

import dataclasses

from pier.gateway.__main__ import parse_args
from pier.gateway.limits import ClientLimits
from pier.settings import GatewaySettings


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
