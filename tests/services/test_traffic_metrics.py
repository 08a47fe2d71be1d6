"""The control plane's /metrics shows the sampled traffic only for the nodes, aliases and
instances the store holds: the gateway keeps a removed node's counters, and showing
them would grow the series with every node ever made."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest

from pier.domain.aliases import AliasSpec
from pier.domain.instance_status import InstanceStatus
from pier.domain.records import InstanceRecord
from pier.domain.specs import parse_node_spec
from pier.domain.traffic import Figures, InstanceUsage, Traffic
from pier.services.traffic_metrics import TrafficCollector
from pier.store.repository import Repository, utcnow

SPEC = parse_node_spec({"image": "127.0.0.1:5000/echo:1", "port": 8080})


@dataclass
class Snapshot:
    """What a sampler read last, as plain values."""

    read: Traffic
    measured: dict[str, InstanceUsage] = field(default_factory=dict)

    def traffic(self) -> Traffic | None:
        return self.read

    def usage(self) -> Mapping[str, InstanceUsage]:
        return self.measured


def instance(instance_id: str, node: str) -> InstanceRecord:
    now = utcnow()
    return InstanceRecord(
        id=instance_id, project="default", node=node, status=InstanceStatus.HEALTHY,
        since=now, endpoint="http://127.0.0.1:9", restarts=0, last_error=None, generation=1,
        runtime="local", limits_applied=(), limits_not_applied=(), created_at=now,
    )  # fmt: skip


def figures() -> Figures:
    return Figures({"2xx": 3.0}, {0.1: 2.0, math.inf: 3.0}, 0.2, 1.0, 300.0, 9000.0)


def test_only_nodes_aliases_and_instances_of_the_store_are_shown(repo: Repository) -> None:
    repo.add_node("default", "web", SPEC, runtime="local")
    repo.add_alias("default", "pub", AliasSpec.model_validate({"nodes": [{"node": "web"}]}))
    repo.upsert_instance(instance("web-1", "web"))
    traffic = Traffic(
        nodes={("default", "web"): figures(), ("default", "gone"): figures()},
        aliases={("default", "pub", "web"): figures(), ("default", "old", "web"): figures()},
        instances={("default", "web", "web-1"): figures(), ("default", "web", "web-0"): figures()},
    )
    usage = {
        "web-1": InstanceUsage("default", "web", 12.5, 2**20),
        "web-0": InstanceUsage("default", "web", 1.0, 1),
    }
    registry = CollectorRegistry()
    registry.register(TrafficCollector(repo, Snapshot(traffic, usage)))
    text = generate_latest(registry).decode()
    for shown in (
        'pier_node_requests_total{code="2xx",node="web",project="default"} 3.0',
        'pier_node_request_duration_seconds_bucket{le="0.1",node="web",project="default"} 2.0',
        'pier_node_in_flight_requests{node="web",project="default"} 1.0',
        'pier_node_bytes_total{direction="in",node="web",project="default"} 300.0',
        'pier_alias_bytes_total{alias="pub",direction="out",node="web",project="default"} 9000.0',
        'pier_instance_bytes_total{direction="out",instance="web-1",node="web",project="default"}',
        'pier_instance_cpu_percent{instance="web-1",node="web",project="default"} 12.5',
        'pier_instance_memory_bytes{instance="web-1",node="web",project="default"} 1.048576e+06',
    ):
        assert shown in text, shown
    assert 'node="gone"' not in text and 'alias="old"' not in text and "web-0" not in text
