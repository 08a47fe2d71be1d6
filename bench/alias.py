"""What an alias costs in pier's gateway, in one run, on one load generator.

    uv run python bench/alias.py [--duration 3] [--rounds 8] [--quick] [--mirror-percent 10]
        [--upstream nginx|python] [--concurrency 1 32]

Three echo upstreams are nodes ``e1``, ``e2`` and ``e3`` of one ``python -m pier.gateway``
(routes from a routes file). wrk (one thread, CPU 1; the gateway and upstreams on CPU 0,
as in NOTES-performance.md) measures, at each concurrency, interleaved in rounds:
  * ``node``: ``e1`` called directly through the gateway (``/default/nodes/e1/...``);
  * ``alias``: an alias over ``e1`` and ``e2``, 50/50 (``/default/aliases/pair/...``);
  * ``node x2``: one node ``e12`` whose two instances are ``e1``'s and ``e2``'s
    upstreams: the alias's two upstreams without the alias, which tells the alias's own
    cost from that of a second upstream process on CPU 0;
  * ``mirrored``: the same alias with ``--mirror-percent`` of its requests copied to
    ``e3`` (``/default/aliases/mirrored/...``).
The upstreams (``--upstream``) are nginx answering a fixed V2 body (the default): an upstream
several times cheaper than the gateway, so the CPU they share with it stays small and what
the figures show is the gateway's; or ``python``, ``_upstream.py`` (a bare ASGI app on
uvicorn), which costs about what the gateway does, so that a second upstream process on
CPU 0 moves the figures as much as the alias does.
The median of the rounds is shown, and each target's ratio to ``node`` (and to ``node x2``)
for requests/s and for the gateway process's CPU time per request (user + system, from
/proc: what the gateway would do on a CPU of its own). A ratio is the median of each round's
ratio: the targets of a round run seconds apart, in reverse order every other round, so
that the machine's drift over a run (a fifth, for one target alone, on a shared machine)
cancels out of it.
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

from _upstream import BODY
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
from gateway import ECHO_PATH, NGINX_CONF, SERVER_CPU, start_echo, worker_pid

NGINX_ECHO_HTTP = """\
    keepalive_requests 100000000;
    keepalive_timeout 600s;
"""
NGINX_ECHO_LOCATION = """\
        location / {{
            default_type application/json;
            return 200 '{body}';
        }}
"""


def start_upstream(kind: str, port: int, work: Path) -> subprocess.Popen[bytes]:
    """An echo upstream on the gateway's CPU: nginx's fixed answer, or ``_upstream.py``."""
    if kind == "python":
        return start_echo(port)
    nginx_dir = work / f"nginx-{port}"
    nginx_dir.mkdir()
    conf = nginx_dir / "nginx.conf"
    conf.write_text(  # bench/gateway.py's nginx, answering itself instead of proxying
        NGINX_CONF.format(
            dir=nginx_dir,
            port=port,
            upstreams=NGINX_ECHO_HTTP,
            locations=NGINX_ECHO_LOCATION.format(body=BODY.decode()),
        )
    )
    argv = ["nginx", "-p", str(nginx_dir), "-c", str(conf), "-g", "daemon off;"]
    process = subprocess.Popen(pinned(SERVER_CPU, argv))
    wait_for_port(port, process)
    return process


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


def start_gateway(
    port: int, routes: dict[str, object], work: Path, extra: list[str] | None = None
) -> subprocess.Popen[bytes]:
    path = work / "routes.json"
    path.write_text(json.dumps(routes))
    argv = [sys.executable, "-m", "pier.gateway", "--port", str(port), "--routes-file", str(path)]
    argv += extra or []
    log = open(work / "gateway.log", "wb")  # noqa: SIM115 - lives as long as the process
    process = subprocess.Popen(pinned(SERVER_CPU, argv), stdout=log, stderr=subprocess.STDOUT)
    wait_for_port(port, process)
    return process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=8, help="interleaved rounds (median)")
    parser.add_argument("--quick", action="store_true", help="3 s runs, 1 round")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--mirror-percent", type=float, default=10.0)
    parser.add_argument(
        "--mirror-batch-wait-s",
        type=float,
        default=0.0,
        help="the gateway's --mirror-batch-wait-s: copies sent in bursts (0: each at once)",
    )
    parser.add_argument(
        "--upstream",
        choices=("nginx", "python"),
        default="nginx",
        help="the echo upstreams: nginx's fixed answer or bench/_upstream.py (uvicorn)",
    )
    args = parser.parse_args()
    if args.quick:
        args.duration, args.rounds = 3.0, 1
    require_tools("wrk", "taskset", *(["nginx"] if args.upstream == "nginx" else []))
    results: Runs = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="pier-bench-alias-") as tmp:
        processes: list[subprocess.Popen[bytes]] = []
        try:
            ports = {name: free_port() for name in ("e1", "e2", "e3")}
            processes += [start_upstream(args.upstream, p, Path(tmp)) for p in ports.values()]
            port = free_port()
            gateway = start_gateway(
                port,
                _routes(ports, args.mirror_percent),
                Path(tmp),
                ["--mirror-batch-wait-s", str(args.mirror_batch_wait_s)],
            )
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
                order = list(targets.items())
                if round_index % 2:  # ABBA: a drift within a round favours no target
                    order.reverse()
                for connections in args.concurrency:
                    for name, url in order:
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


def _paired(results: Runs, name: str, base: str, connections: int) -> tuple[float, float]:
    """Medians over the rounds of ``name``'s throughput as a share of ``base``'s in the
    same round, and of ``base``'s gateway CPU per request as a share of ``name``'s: each
    round's pair ran seconds apart, so the machine's drift over a run (here up to a
    fifth, for one target alone) cancels out of the ratio."""
    pairs = list(zip(results[(name, connections)], results[(base, connections)], strict=True))
    return (
        statistics.median(r.requests_per_s / b.requests_per_s for (r, _), (b, _) in pairs),
        statistics.median(b_cpu / cpu for (_, cpu), (_, b_cpu) in pairs),
    )


def _print_table(results: Runs, args: argparse.Namespace) -> None:
    print(
        f"\n{args.rounds} round(s) of {args.duration:g} s, wrk -t1 on CPU 1, gateway and "
        f"{args.upstream} upstreams on CPU {SERVER_CPU}; mirror {args.mirror_percent:g}%; "
        "median per target; ratios are medians of each round's ratio\n"
    )
    print(
        f"{'target':<10}{'conc':>5}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'x node':>8}"
        f"{'x n x2':>8}{'gw us/req':>11}{'x node':>8}{'errors':>8}"
    )
    for connections in args.concurrency:
        for name in ("node", "node x2", "alias", "mirrored"):
            runs = results[(name, connections)]
            rps = statistics.median(r.requests_per_s for r, _ in runs)
            p50 = statistics.median(r.p50_ms for r, _ in runs)
            p99 = statistics.median(r.p99_ms for r, _ in runs)
            cpu = statistics.median(c for _, c in runs)
            errors = sum(r.errors for r, _ in runs)
            x_node, x_node_cpu = _paired(results, name, "node", connections)
            x_node2, _ = _paired(results, name, "node x2", connections)
            print(
                f"{name:<10}{connections:>5}{rps:>10.0f}{p50:>9.3f}{p99:>9.3f}{x_node:>8.2f}"
                f"{x_node2:>8.2f}{cpu:>11.1f}{x_node_cpu:>8.2f}{errors:>8}"
            )
    print("\nx node: throughput as a share of node's (req/s), and node's gateway CPU per request")
    print("as a share of the target's (what the gateway would do on a CPU of its own).")
    print("x n x2: throughput as a share of node x2's: the same two upstreams, no alias.")


if __name__ == "__main__":
    main()
