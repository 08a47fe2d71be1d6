"""The controller's tick at many nodes, in process: a real store, the fake runtime and
fake gateway of the controller tests, ``--zero`` nodes at ``--min 0`` and ``--running``
nodes of one instance each, nothing calling them. Prints tick p50/p99 over ``--ticks``
idle ticks, and with ``--profile PATH`` writes cProfile's figures of those ticks.

    python bench/tick_profile.py [--zero 900] [--running 100] [--ticks 40]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.controller.fake_runtime import (
    FakeClock,
    FakeGateway,
    FakeRuntime,
    add_image_node,
    controllers,
)

from pier.store.database import create_store_engine, migrate
from pier.store.repository import Repository

HEALTH = {"protocol": "tcp", "interval_s": 2.0}


async def run(args: argparse.Namespace, tmp: Path) -> None:
    engine = create_store_engine(f"sqlite:///{tmp / 'pier.db'}")
    migrate(engine)
    repo = Repository(engine)
    repo.ensure_default_project()
    for i in range(args.running):
        add_image_node(repo, f"r{i}", health=HEALTH)
    for i in range(args.zero):
        add_image_node(repo, f"z{i}", health=HEALTH, min_instances=0)
    gateway = FakeGateway(in_flight_seconds={f"r{i}": 0.0 for i in range(args.running)})
    await gateway.start()
    clock = FakeClock()
    async with controllers(repo, tmp) as make:
        controller = make(FakeRuntime(serve=True), clock=clock, gateway=gateway)
        for _ in range(60):  # settle: every running node Healthy
            await controller.tick()
            clock.advance(0.5)
            await asyncio.sleep(0.01)
        took: list[float] = []
        profiler = cProfile.Profile() if args.profile else None
        for _ in range(args.ticks):
            clock.advance(0.5)
            if profiler:
                profiler.enable()
            started = time.perf_counter()
            await controller.tick()
            took.append(time.perf_counter() - started)
            if profiler:
                profiler.disable()
            await asyncio.sleep(0.01)
        took.sort()
        p50, p99 = statistics.median(took), took[int(len(took) * 0.99) - 1]
        nodes = args.zero + args.running
        print(f"{nodes} nodes: tick p50 {p50 * 1e3:.1f} ms p99 {p99 * 1e3:.1f} ms")
        if profiler:
            profiler.dump_stats(str(args.profile))
    await gateway.stop()
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zero", type=int, default=900)
    parser.add_argument("--running", type=int, default=100)
    parser.add_argument("--ticks", type=int, default=40)
    parser.add_argument("--profile", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pier-bench-tick-") as tmp:
        asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    main()
