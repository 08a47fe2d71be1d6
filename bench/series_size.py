"""The series store's size after a day of samples for 20 nodes, on a simulated clock.

A real ``series.db`` written through ``SeriesStore.write`` (its tiers, its retention
delete on every write) with the default retentions, one write every 5 s of simulated
time, each carrying what the control plane's sampler writes: per node requests, errors,
in flight, a latency histogram, instances and Healthy instances; per instance CPU and
memory. Prints the file's size (with its WAL), the points of each tier and the time
the writes took (a day is 17280 writes: minutes of one core; ``--hours 1`` for a look).

    python bench/series_size.py [--nodes 20] [--instances 1] [--hours 24]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from pier.domain.latency import LATENCY_BUCKETS_S
from pier.observability.series import TIER_STEPS_S, Sample, SeriesStore
from pier.settings import SeriesSettings

NODE_FIELDS = ("requests", "errors", "in_flight", "instances", "instances_healthy")
INSTANCE_FIELDS = ("cpu_percent", "memory_bytes")
T0 = 1_700_000_000 // 600 * 600


def samples(nodes: int, instances: int, sample_s: float, rng: random.Random) -> list[Sample]:
    """One sampler pass over ``nodes`` nodes of ``instances`` instances each."""
    out = []
    for i in range(nodes):
        node = f"node-{i:02}"
        for field in NODE_FIELDS:
            out.append(Sample("default", node, field, rng.uniform(0, 500), sample_s))
        buckets = [float(rng.randrange(50)) for _ in range(len(LATENCY_BUCKETS_S) + 1)]
        out.append(Sample("default", node, "latency", sum(buckets), 1.0, buckets=buckets))
        for k in range(instances):
            for field in INSTANCE_FIELDS:
                value = rng.uniform(0, 2**30)
                out.append(Sample("default", node, field, value, 1.0, instance=f"i-{i}-{k}"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--instances", type=int, default=1, help="instances per node")
    parser.add_argument("--hours", type=float, default=24.0, help="simulated hours")
    args = parser.parse_args()
    settings = SeriesSettings()
    rng = random.Random(0)
    writes = int(args.hours * 3600 / settings.sample_s)
    with tempfile.TemporaryDirectory(prefix="pier-series-") as tmp:
        path = Path(tmp) / "series.db"
        store = SeriesStore(path, retention_s=settings.retention_s, max_series=settings.max_series)
        started = time.perf_counter()
        for n in range(writes):
            now = T0 + n * settings.sample_s
            store.write(samples(args.nodes, args.instances, settings.sample_s, rng), now)
        took = time.perf_counter() - started
        rows = dict(store._db.execute("SELECT step, COUNT(*) FROM points GROUP BY step"))
        (series,) = store._db.execute(
            "SELECT COUNT(*) FROM (SELECT DISTINCT project, node, instance, field FROM points)"
        ).fetchone()
        pages_bytes = store.size_bytes()
        files = sum(p.stat().st_size for p in Path(tmp).iterdir())
        store.close()
    print(
        f"\nseries store after {args.hours:g} h of samples every {settings.sample_s:g} s "
        f"({writes} writes), {args.nodes} nodes x {args.instances} instance(s), "
        f"{series} series; retentions {settings.retention_s} s"
    )
    for step in TIER_STEPS_S:
        print(f"  {step:>3} s points: {rows.get(step, 0):>9}")
    mib = 2**20
    print(f"  file (pages): {pages_bytes / mib:.1f} MiB; on disk with WAL: {files / mib:.1f} MiB")
    print(f"  writes took {took:.1f} s ({took / writes * 1000:.2f} ms per write)")


if __name__ == "__main__":
    main()
