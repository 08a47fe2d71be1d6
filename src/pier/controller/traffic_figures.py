"""The gateway's Prometheus text of one worker read as ``Traffic``: requests by status
class, latency buckets, requests in flight and bytes per node; requests, duration
buckets and bytes per node of an alias; answered/failed requests and bytes per routed
instance. Series without every label of their kind are left out."""

from __future__ import annotations

import math
from typing import Any, Final

from prometheus_client.parser import text_string_to_metric_families

from pier.domain.traffic import Figures, Traffic

_NODE: Final = ("project", "node")
_ALIAS: Final = ("project", "alias", "node")
_INSTANCE: Final = ("project", "node", "instance")
FAMILIES: Final[dict[str, tuple[str, tuple[str, ...], str]]] = {
    "pier_gateway_requests": ("nodes", _NODE, "code"),
    "pier_gateway_upstream_latency_seconds": ("nodes", _NODE, ""),
    "pier_gateway_in_flight_requests": ("nodes", _NODE, ""),
    "pier_gateway_bytes": ("nodes", _NODE, ""),
    "pier_gateway_alias_requests": ("aliases", _ALIAS, "class"),
    "pier_gateway_alias_request_duration_seconds": ("aliases", _ALIAS, ""),
    "pier_gateway_alias_bytes": ("aliases", _ALIAS, ""),
    "pier_gateway_instance_requests": ("instances", _INSTANCE, "outcome"),
    "pier_gateway_instance_bytes": ("instances", _INSTANCE, ""),
}
"""Family → (where in ``Traffic``, the labels of its key, the label of a count's class)."""


def parse_traffic(text: str) -> Traffic:
    traffic = Traffic()
    for family in text_string_to_metric_families(text):
        where = FAMILIES.get(family.name)
        if where is None:
            continue
        kind, labels, class_label = where
        into: dict[tuple[str, ...], Figures] = getattr(traffic, kind)
        for sample in family.samples:
            key = tuple(sample.labels.get(label, "") for label in labels)
            if all(key):
                _take(into.setdefault(key, Figures()), sample, class_label)
    return traffic


def _take(figures: Figures, sample: Any, class_label: str) -> None:
    name: str = sample.name
    labels: dict[str, str] = sample.labels
    value = float(sample.value)
    if name.endswith("_bucket"):
        bound = labels["le"]
        figures.latency[math.inf if bound == "+Inf" else float(bound)] = value
    elif name.endswith("_sum"):
        figures.latency_sum_s = value
    elif name.endswith("_count") or name.endswith("_created"):
        return
    elif "direction" in labels:
        if labels["direction"] == "in":
            figures.bytes_in = value
        else:
            figures.bytes_out = value
    elif class_label:
        figures.by_class[labels.get(class_label, "")] = value
    else:
        figures.in_flight = value
