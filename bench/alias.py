"""What an alias costs in pier's gateway, in one run, on one load generator.

    uv run python bench/alias.py [--duration 5] [--rounds 3] [--quick] [--mirror-percent 10]

Three echo upstreams (``_upstream.py``, a bare ASGI app on uvicorn) are nodes ``e1``,
``e2`` and ``e3`` of one ``python -m pier.gateway`` (routes from a routes file). wrk
(one thread, CPU 1; the gateway and upstreams on CPU 0, as in NOTES-performance.md)
measures, at each concurrency, interleaved in rounds:
  * ``node``: ``e1`` called directly through the gateway (``/default/nodes/e1/...``);
  * ``alias``: an alias over ``e1`` and ``e2``, 50/50 (``/default/aliases/pair/...``);
  * ``node x2``: one node ``e12`` whose two instances are ``e1``'s and ``e2``'s
    upstreams: the alias's two upstreams without the alias, which tells the alias's own
    cost from that of a second upstream process on CPU 0;
  * ``mirrored``: the same alias with ``--mirror-percent`` of its requests copied to
    ``e3`` (``/default/aliases/mirrored/...``).
The median of the rounds is shown with the ratio to ``node``, for requests/s and for the
gateway process's CPU time per request (user + system, from /proc: steadier than
requests/s on a shared machine, and what the gateway would do on a CPU of its own).
Targets: the alias costs at most 5% of throughput, the mirror at most 15%.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from _wrk import (
    POST_LUA,
    WrkResult,
    cpu_seconds,
    free_port,
    pinned,
    require_tools,
    run_wrk,
    stop,
    wait_for_port,
)
from gateway import ECHO_PATH, SERVER_CPU, start_echo, worker_pid


def _routes(ports: dict[str, int], mirror_percent: float) -> dict[str, object]:
    nodes = {
        f"default/{name}": {
            "project": "default",
            "node": name,
            "access": "public",
            "instances": [{"instance_id": f"{name}-1", "endpoint": f"http://127.0.0.1:{port}"}],
        }
        for name, port in ports.items()
    }
    nodes["default/e12"] = {
        "project": "default",
        "node": "e12",
        "access": "public",
        "instances": [
            {"instance_id": f"e12-{name}", "endpoint": f"http://127.0.0.1:{ports[name]}"}
            for name in ("e1", "e2")
        ],
    }
    pair = [{"node": "e1", "weight": 50}, {"node": "e2", "weight": 50}]
    aliases = {
        "default/pair": {
            "project": "default",
            "alias": "pair",
            "access": "public",
            "targets": pair,
        },
        "default/mirrored": {
            "project": "default",
            "alias": "mirrored",
            "access": "public",
            "targets": pair,
            "mirrors": [{"node": "e3", "percent": mirror_percent}],
        },
    }
    return {"version": 1, "nodes": nodes, "aliases": aliases}


def start_gateway(port: int, routes: dict[str, object], work: Path) -> subprocess.Popen[bytes]:
    path = work / "routes.json"
    path.write_text(json.dumps(routes))
    argv = [sys.executable, "-m", "pier.gateway", "--port", str(port), "--routes-file", str(path)]
    log = open(work / "gateway.log", "wb")  # noqa: SIM115 - lives as long as the process
    process = subprocess.Popen(pinned(SERVER_CPU, argv), stdout=log, stderr=subprocess.STDOUT)
    wait_for_port(port, process)
    return process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--quick", action="store_true", help="3 s runs, 1 round")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--mirror-percent", type=float, default=10.0)
    args = parser.parse_args()
    if args.quick:
        args.duration, args.rounds = 3.0, 1
    require_tools("wrk", "taskset")
    results: Runs = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="pier-bench-alias-") as tmp:
        processes: list[subprocess.Popen[bytes]] = []
        try:
            ports = {name: free_port() for name in ("e1", "e2", "e3")}
            processes += [start_echo(port) for port in ports.values()]
            port = free_port()
            gateway = start_gateway(port, _routes(ports, args.mirror_percent), Path(tmp))
            processes.append(gateway)
            gateway_pid = worker_pid(gateway)
            base = f"http://127.0.0.1:{port}/default"
            targets = {
                "node": f"{base}/nodes/e1{ECHO_PATH}",
                "node x2": f"{base}/nodes/e12{ECHO_PATH}",
                "alias": f"{base}/aliases/pair{ECHO_PATH}",
                "mirrored": f"{base}/aliases/mirrored{ECHO_PATH}",
            }
            for round_index in range(args.rounds):
                for connections in args.concurrency:
                    for name, url in targets.items():
                        result, cpu_us = measure(url, connections, args.duration, gateway_pid)
                        results[(name, connections)].append((result, cpu_us))
                        print(
                            f"round {round_index + 1} {name:<9} c={connections:<3} "
                            f"{result.requests_per_s:>9.0f} req/s  p50 {result.p50_ms:.3f} ms"
                            f"  gateway {cpu_us:.1f} us/req",
                            file=sys.stderr,
                        )
        finally:
            for process in reversed(processes):
                stop(process)
    _print_table(results, args)


def measure(url: str, connections: int, duration_s: float, pid: int) -> tuple[WrkResult, float]:
    """wrk against ``url`` (after a second to warm the pools); also the gateway's CPU
    microseconds per request (user + system: its own share of CPU 0, whatever else runs)."""
    run_wrk(url, connections=connections, duration_s=1, script=POST_LUA)
    before = cpu_seconds(pid)
    result = run_wrk(url, connections=connections, duration_s=duration_s, script=POST_LUA)
    return result, (cpu_seconds(pid) - before) * 1e6 / max(result.requests, 1)


Runs = dict[tuple[str, int], list[tuple[WrkResult, float]]]
"""(target, connections) -> one (wrk result, gateway CPU us/request) per round."""


def _print_table(results: Runs, args: argparse.Namespace) -> None:
    print(
        f"\n{args.rounds} round(s) of {args.duration:g} s, wrk -t1 on CPU 1, gateway and "
        f"upstreams on CPU {SERVER_CPU}; mirror {args.mirror_percent:g}%; median per target\n"
    )
    print(
        f"{'target':<10}{'conc':>5}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'x node':>8}"
        f"{'x n x2':>8}{'gw us/req':>11}{'x node':>8}{'errors':>8}"
    )
    for connections in args.concurrency:
        node_runs = results[("node", connections)]
        node = statistics.median(r.requests_per_s for r, _ in node_runs)
        node_cpu = statistics.median(c for _, c in node_runs)
        node2 = statistics.median(r.requests_per_s for r, _ in results[("node x2", connections)])
        for name in ("node", "node x2", "alias", "mirrored"):
            runs = results[(name, connections)]
            rps = statistics.median(r.requests_per_s for r, _ in runs)
            p50 = statistics.median(r.p50_ms for r, _ in runs)
            p99 = statistics.median(r.p99_ms for r, _ in runs)
            cpu = statistics.median(c for _, c in runs)
            errors = sum(r.errors for r, _ in runs)
            print(
                f"{name:<10}{connections:>5}{rps:>10.0f}{p50:>9.3f}{p99:>9.3f}{rps / node:>8.2f}"
                f"{rps / node2:>8.2f}{cpu:>11.1f}{node_cpu / cpu:>8.2f}{errors:>8}"
            )
    print("\nx node: throughput as a share of node's (req/s), and node's gateway CPU per request")
    print("as a share of the target's (what the gateway would do on a CPU of its own).")
    print("x n x2: throughput as a share of node x2's: the same two upstreams, no alias.")


if __name__ == "__main__":
    main()
