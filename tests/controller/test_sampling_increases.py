"""The sampler's increases of the gateway's counters between two samples, and the
gateway's text read as ``Traffic`` (nodes, nodes of aliases, instances, bytes)."""

from __future__ import annotations

import math

from pier.controller.sampling import increases
from pier.controller.traffic_figures import parse_traffic
from pier.domain.traffic import Figures
from pier.gateway.metrics import GatewayMetrics

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
# TYPE pier_gateway_bytes_total counter
pier_gateway_bytes_total{project="p",node="n",direction="in"} 700.0
pier_gateway_bytes_total{project="p",node="n",direction="out"} 9000.0
"""


def node_figures(text: str = TEXT) -> Figures:
    (figures,) = parse_traffic(text).nodes.values()
    return figures


def test_the_first_sample_counts_from_zero_with_per_bucket_counts() -> None:
    figures = node_figures()
    assert figures.in_flight == 3.0 and math.inf in figures.latency
    grown = increases(None, figures)
    assert (grown.requests, grown.errors, grown.buckets) == (10.0, 2.0, [6.0, 3.0, 1.0])
    assert (grown.bytes_in, grown.bytes_out) == (700.0, 9000.0)


def test_increases_since_the_previous_sample() -> None:
    before = Figures({"2xx": 5.0, "5xx": 1.0}, {0.1: 4.0, 1.0: 5.0, math.inf: 6.0}, bytes_in=500.0)
    grown = increases(before, node_figures())
    assert (grown.requests, grown.errors, grown.buckets) == (4.0, 1.0, [2.0, 2.0, 0.0])
    assert grown.bytes_in == 200.0


def test_a_restarted_gateway_counts_from_zero() -> None:
    before = Figures({"2xx": 500.0}, {0.1: 400.0, 1.0: 450.0, math.inf: 500.0}, bytes_out=10**6)
    grown = increases(before, node_figures())
    assert grown.requests == 10.0 and grown.buckets == [6.0, 3.0, 1.0]
    assert grown.bytes_out == 9000.0


def test_bytes_are_counted_per_node_alias_node_and_instance_and_read_back() -> None:
    metrics = GatewayMetrics()
    metrics.node("p", "n").record(200, 0.01, 120, 3400)
    metrics.node("p", "n").record(503, None, 80, 100)
    metrics.alias("p", "a", "n").record(200, 0.02, 120, 3400)
    traffic = parse_traffic(metrics.render().decode())
    node = traffic.nodes[("p", "n")]
    assert (node.bytes_in, node.bytes_out) == (200.0, 3500.0)
    assert node.by_class == {"2xx": 1.0, "5xx": 1.0}
    alias = traffic.aliases[("p", "a", "n")]
    assert (alias.bytes_in, alias.bytes_out, alias.by_class) == (120.0, 3400.0, {"2xx": 1.0})
    assert sum(1 for b in alias.latency.values() if b) >= 1


def test_figures_without_a_latency_histogram_have_no_buckets() -> None:
    """An instance's (or a node's with only gateway errors) figures have no histogram."""
    grown = increases(None, Figures({"answered": 3.0}, bytes_in=10.0), error_class="failed")
    assert (grown.requests, grown.errors, grown.buckets, grown.bytes_in) == (3.0, 0.0, [], 10.0)
