"""Prometheus metrics of one model server, served at ``GET /metrics``.

=================================================  =========  =======================
metric                                             type       labels
=================================================  =========  =======================
``pier_modelserver_requests_total``                counter    model, endpoint, status
``pier_modelserver_request_duration_seconds``      histogram  model, endpoint, status
``pier_modelserver_requests_in_flight``            gauge      model
``pier_modelserver_inferences_total``              counter    model
``pier_modelserver_inference_executions_total``    counter    model
=================================================  =========  =======================

Only ``/v2/models/...`` requests are counted and timed (``endpoint`` is ``infer``,
``metadata`` or ``ready``); health probes and scrapes are not. ``model`` is the served
model's name, or ``unknown`` for requests naming another model, so that user input
cannot grow the label set. The duration runs from the request's arrival (headers
read) to its answer being ready. ``requests_in_flight`` counts every HTTP request
received but not yet answered, probes included. ``inferences_total`` counts samples
(the batch dimension), ``inference_executions_total`` calls of the model. The usual
``process_*`` metrics come along.

Why not ``prometheus_client``'s ``Counter``/``Histogram`` objects: each update takes a
lock and costs a few microseconds, and a request makes about seven of them, which is
measurable next to a model that answers in ten. Every update here happens on the event
loop thread, so plain integers suffice; a custom collector turns them into metric
families when scraped.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

UNKNOWN_MODEL = "unknown"
BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class _Series:
    """Count, sum and per-bucket counts of one label set's request durations."""

    __slots__ = ("buckets", "count", "sum_s")

    def __init__(self) -> None:
        self.count = 0
        self.sum_s = 0.0
        self.buckets = [0] * (len(BUCKETS_S) + 1)  # the last one is +Inf


class ModelServerMetrics(Collector):
    """The metrics of one model server, in a registry of its own."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, model: str) -> None:
        self.model = model
        self.in_flight = 0
        self.held: Callable[[], int] = lambda: 0
        """Inference requests the model's pool holds now (set by the data plane)."""
        self.inferences = 0
        self.executions = 0
        self._series: dict[tuple[str, str, int], _Series] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        ProcessCollector(registry=self.registry)

    def observe_request(self, model: str, endpoint: str, status: int, duration_s: float) -> None:
        """Count one answered request and record its duration."""
        key = (model if model == self.model else UNKNOWN_MODEL, endpoint, status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series()
        series.count += 1
        series.sum_s += duration_s
        series.buckets[bisect.bisect_left(BUCKETS_S, duration_s)] += 1

    def observe_inference(self, samples: int) -> None:
        self.inferences += samples
        self.executions += 1

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)

    def collect(self) -> Iterator[Metric]:
        labels = ["model", "endpoint", "status"]
        requests = CounterMetricFamily(
            "pier_modelserver_requests",
            "Requests to /v2/models/..., by endpoint and HTTP status.",
            labels=labels,
        )
        durations = HistogramMetricFamily(
            "pier_modelserver_request_duration_seconds",
            "Time from a request's arrival to its answer, in seconds.",
            labels=labels,
        )
        for (model, endpoint, status), series in sorted(self._series.items()):
            values = [model, endpoint, str(status)]
            requests.add_metric(values, series.count)
            cumulative, buckets = 0, []
            for bound, count in zip((*BUCKETS_S, float("inf")), series.buckets, strict=True):
                cumulative += count
                buckets.append((_bound(bound), cumulative))
            durations.add_metric(values, buckets, series.sum_s)
        yield requests
        yield durations
        yield _single(
            GaugeMetricFamily,
            "requests_in_flight",
            "HTTP requests received but not yet answered.",
            self.model,
            self.in_flight,
        )
        yield _single(
            GaugeMetricFamily,
            "inference_requests_held",
            "Inference requests running, or waiting for a worker thread or a batch.",
            self.model,
            self.held(),
        )
        yield _single(
            CounterMetricFamily,
            "inferences",
            "Samples inferred (the batch dimension of the inputs).",
            self.model,
            self.inferences,
        )
        yield _single(
            CounterMetricFamily,
            "inference_executions",
            "Calls of the model.",
            self.model,
            self.executions,
        )


def _bound(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


def _single(
    family: type[CounterMetricFamily] | type[GaugeMetricFamily],
    name: str,
    documentation: str,
    model: str,
    value: float,
) -> Metric:
    metric = family(f"pier_modelserver_{name}", documentation, labels=["model"])
    metric.add_metric([model], value)
    return metric
