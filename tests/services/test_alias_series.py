"""An alias's series, read from a real series file: its own line adds its nodes' up
(rates add, quantiles come from the buckets of both), beside one line per node; the
metrics the gateway does not count for aliases are refused naming ``metric``."""

from __future__ import annotations

from pathlib import Path

import pytest

from pier.domain.aliases import AliasSpec
from pier.domain.errors import InvalidSpec
from pier.domain.latency import LATENCY_BUCKETS_S
from pier.domain.specs import parse_node_spec
from pier.domain.views import SeriesMetric
from pier.observability.series import ALIAS_FIELD, Sample, SeriesStore
from pier.services.series import SeriesService
from pier.store.repository import Repository

RETENTION = (3600.0, 86400.0, 7 * 86400.0)
T0 = 1_700_000_000 // 600 * 600
SPEC = parse_node_spec({"image": "127.0.0.1:5000/echo:1", "port": 8080})


def buckets(at: int) -> list[float]:
    """Ten requests in the bucket at index ``at``."""
    counts = [0.0] * (len(LATENCY_BUCKETS_S) + 1)
    counts[at] = 10.0
    return counts


def test_an_alias_line_adds_up_its_nodes(repo: Repository, tmp_path: Path) -> None:
    for node in ("v1", "v2"):
        repo.add_node("default", node, SPEC, runtime="docker")
    nodes = {"nodes": [{"node": "v1", "share": 50}, {"node": "v2", "share": 50}]}
    repo.add_alias("default", "pub", AliasSpec.model_validate(nodes))
    path = tmp_path / "series.db"
    store = SeriesStore(path, retention_s=RETENTION, max_series=100)
    for t in range(T0, T0 + 30, 5):
        store.write(
            [
                Sample("default", "pub", ALIAS_FIELD + "requests", 10.0, 5.0, "v1"),
                Sample("default", "pub", ALIAS_FIELD + "requests", 30.0, 5.0, "v2"),
                Sample("default", "pub", ALIAS_FIELD + "errors", 5.0, 5.0, "v2"),
                Sample("default", "pub", ALIAS_FIELD + "latency", 10.0, 1.0, "v1", buckets(0)),
                Sample("default", "pub", ALIAS_FIELD + "latency", 10.0, 1.0, "v2", buckets(8)),
            ],
            now=t,
        )
    store.close()
    service = SeriesService(repo, path, RETENTION)

    def read(metric: SeriesMetric) -> dict[str | None, float | None]:
        view = service.read_alias("default", "pub", metric, since=T0, step=5, now=T0 + 30)
        assert all(line.instance is None for line in view.series)
        return {line.node: line.points[0].value for line in view.series}

    assert read(SeriesMetric.REQUESTS_PER_S) == {None: 8.0, "v1": 2.0, "v2": 6.0}
    assert read(SeriesMetric.ERROR_RATE) == {None: 0.125, "v1": 0.0, "v2": 5.0 / 30.0}
    p99 = read(SeriesMetric.P99)
    assert p99["v1"] is not None and p99["v1"] <= LATENCY_BUCKETS_S[0]
    slow = p99[None]  # from both nodes' buckets: in the slow node's bucket
    assert slow is not None and LATENCY_BUCKETS_S[7] < slow <= LATENCY_BUCKETS_S[8]
    with pytest.raises(InvalidSpec, match="metric"):
        service.read_alias("default", "pub", SeriesMetric.CPU_PERCENT, since=T0, step=5,
                           now=T0 + 30)  # fmt: skip
