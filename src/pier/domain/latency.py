"""The upper bounds (seconds) of the gateway's latency histogram buckets: the gateway
counts requests into them, pier's own series compute quantiles from them."""

from __future__ import annotations

from typing import Final

LATENCY_BUCKETS_S: Final = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
