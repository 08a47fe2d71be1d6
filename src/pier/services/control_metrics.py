"""What the control plane's ``/metrics`` says of the installation, read from the store at
each scrape: nodes by status, instances by status, aliases and models, per project.

The store is the one owner of this state; counting it when asked keeps the figures
right after a restart and costs nothing between scrapes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

import pier
from pier.domain.records import InstanceRecord
from pier.services.views import node_view
from pier.store.repository import Repository


class StoreCollector(Collector):
    """Gauges of the store's contents, computed when a scrape asks."""

    def __init__(self, repo: Repository) -> None:
        self._repo = repo

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily("pier_info", "pier's version.", labels=["version"])
        info.add_metric([pier.__version__], 1.0)
        yield info
        yield from self._nodes_and_instances()
        yield self._per_project(
            "pier_aliases", "Aliases.", (a.project for a in self._repo.list_aliases())
        )

    def _nodes_and_instances(self) -> Iterator[Metric]:
        by_node: dict[tuple[str, str], list[InstanceRecord]] = {}
        for inst in self._repo.list_instances():
            by_node.setdefault((inst.project, inst.node), []).append(inst)
        nodes = GaugeMetricFamily("pier_nodes", "Nodes by status.", labels=["project", "status"])
        instances = GaugeMetricFamily(
            "pier_node_instances", "A node's instances by status.",
            labels=["project", "node", "status"],
        )  # fmt: skip
        node_counts: Counter[tuple[str, str]] = Counter()
        for node in self._repo.list_nodes():
            mine = by_node.get((node.project, node.name), [])
            node_counts[(node.project, str(node_view(node, mine).status))] += 1
            for status, count in sorted(Counter(str(i.status) for i in mine).items()):
                instances.add_metric([node.project, node.name, status], count)
        for (project, status), count in sorted(node_counts.items()):
            nodes.add_metric([project, status], count)
        yield nodes
        yield instances

    @staticmethod
    def _per_project(name: str, documentation: str, projects: Iterator[str]) -> Metric:
        family = GaugeMetricFamily(name, documentation, labels=["project"])
        for project, count in sorted(Counter(projects).items()):
            family.add_metric([project], count)
        return family
