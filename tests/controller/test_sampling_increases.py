"""The sampler's increases of the gateway's counters between two samples."""

from __future__ import annotations

import math

from pier.controller.gateway_view import NodeFigures, parse_figures
from pier.controller.sampling import increases

TEXT = """\
# TYPE pier_gateway_requests_total counter
pier_gateway_requests_total{project="p",node="n",code="2xx"} 8.0
pier_gateway_requests_total{project="p",node="n",code="5xx"} 2.0
# TYPE pier_gateway_upstream_latency_seconds histogram
pier_gateway_upstream_latency_seconds_bucket{project="p",node="n",le="0.1"} 6.0
pier_gateway_upstream_latency_seconds_bucket{project="p",node="n",le="1.0"} 9.0
pier_gateway_upstream_latency_seconds_bucket{project="p",node="n",le="+Inf"} 10.0
pier_gateway_upstream_latency_seconds_sum{project="p",node="n"} 3.0
pier_gateway_upstream_latency_seconds_count{project="p",node="n"} 10.0
# TYPE pier_gateway_in_flight_requests gauge
pier_gateway_in_flight_requests{project="p",node="n"} 3.0
"""


def test_the_first_sample_counts_from_zero_with_per_bucket_counts() -> None:
    (figures,) = parse_figures(TEXT).values()
    assert figures.in_flight == 3.0 and math.inf in figures.latency
    assert increases(None, figures) == (10.0, 2.0, [6.0, 3.0, 1.0])


def test_increases_since_the_previous_sample() -> None:
    (now,) = parse_figures(TEXT).values()
    before = NodeFigures({"2xx": 5.0, "5xx": 1.0}, {0.1: 4.0, 1.0: 5.0, math.inf: 6.0})
    assert increases(before, now) == (4.0, 1.0, [2.0, 2.0, 0.0])


def test_a_restarted_gateway_counts_from_zero() -> None:
    (now,) = parse_figures(TEXT).values()
    before = NodeFigures({"2xx": 500.0}, {0.1: 400.0, 1.0: 450.0, math.inf: 500.0})
    requests, _, buckets = increases(before, now)
    assert requests == 10.0 and buckets == [6.0, 3.0, 1.0]
