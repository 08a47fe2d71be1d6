"""The gateway's alias figures as the rest of the control plane takes them: the counters
a guarded rollout is decided on (``TrafficCounts`` per (project, alias, node)), and the
latest mirror figures, which the API shows in an alias's view (``AliasFiguresBoard``).

The controller reads the gateway's /metrics once per tick (GatewayView.figures) and
hands the alias part of it to both."""

from __future__ import annotations

import math

from pier.controller.gateway_view import AliasFigures, AliasFiguresRead, MirrorFigures
from pier.domain.rollouts import TrafficCounts
from pier.domain.views import MirrorFiguresView


def traffic_counts(read: AliasFiguresRead) -> dict[tuple[str, str, str], TrafficCounts]:
    """The rollout engine's counters of every (project, alias, node) the gateway counted."""
    return {
        (key.project, key.alias, key.node): counts_of(figures)
        for key, figures in read.aliases.items()
    }


def counts_of(figures: AliasFigures) -> TrafficCounts:
    """Requests of every status class; errors: the 5xx ones, the gateway's own (502, 503,
    504) included; the latency buckets with finite bounds and the histogram's count
    (the gateway's refusals have no latency)."""
    buckets = figures.latency.buckets
    return TrafficCounts(
        requests=figures.total,
        errors=figures.errors,
        buckets=tuple((bound, int(count)) for bound, count in buckets if not math.isinf(bound)),
        timed=figures.latency.count,
    )


def mirror_view(figures: MirrorFigures) -> MirrorFiguresView:
    p50, p95 = figures.p50_s, figures.p95_s
    return MirrorFiguresView(
        node=figures.key.node,
        mirrored=figures.mirrored,
        dropped=figures.dropped,
        errors=figures.errors,
        p50_ms=None if p50 is None else 1000.0 * p50,
        p95_ms=None if p95 is None else 1000.0 * p95,
        compared=figures.equal + figures.differ,
        equal_share=figures.equal_share,
        max_abs_difference=figures.max_abs_difference,
    )


class AliasFiguresBoard:
    """The alias figures of the controller's latest read of the gateway, for the API."""

    def __init__(self) -> None:
        self._mirrors: dict[tuple[str, str], dict[str, MirrorFiguresView]] = {}

    def publish(self, read: AliasFiguresRead) -> None:
        mirrors: dict[tuple[str, str], dict[str, MirrorFiguresView]] = {}
        for key, figures in read.mirrors.items():
            mirrors.setdefault((key.project, key.alias), {})[key.node] = mirror_view(figures)
        self._mirrors = mirrors  # one assignment: a reader sees one read or the other

    def mirror_figures(self, project: str, alias: str) -> dict[str, MirrorFiguresView]:
        return self._mirrors.get((project, alias), {})
