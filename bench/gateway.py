"""Proxy overhead of pier's gateway against nginx, in one run, on one load generator.

    uv run python bench/gateway.py [--duration 10] [--rounds 3] [--quick]

An upstream (a bare ASGI app on uvicorn answering a POST with a small JSON body, see
``_upstream.py``) is measured directly, through ``python -m pier.gateway`` (routes from a
routes file) and through nginx (1 worker, upstream keepalive 64, HTTP/1.1 to the
upstream). Servers and proxies run on CPU 0, wrk (one thread, ``post.lua``) on CPU 1, as
in NOTES-performance.md. Targets are interleaved in rounds and the median of the rounds
is shown, with the ratio to direct throughput, the p50 added to direct, and the CPU time
the proxy process spent per request (user + system).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from _wrk import (
    BENCH_DIR,
    WrkResult,
    child_pids,
    cpu_seconds,
    free_port,
    pinned,
    require_tools,
    run_wrk,
    stop,
    wait_for_port,
)

SERVER_CPU = 0
PATH = "/v2/models/echo/infer"
NGINX_CONF = """\
worker_processes 1;
error_log {dir}/error.log warn;
pid {dir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream echo {{
        server 127.0.0.1:{upstream_port};
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location /default/nodes/echo/ {{
            proxy_pass http://echo/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


@dataclass
class Target:
    name: str
    url: str
    pid: int | None
    """The process whose CPU time is the proxy's cost (None: direct)."""


def start_upstream(port: int) -> subprocess.Popen[bytes]:
    argv = [sys.executable, str(BENCH_DIR / "_upstream.py"), str(port)]
    process = subprocess.Popen(pinned(SERVER_CPU, argv))
    wait_for_port(port, process)
    return process


def start_gateway(port: int, upstream_port: int, work: Path) -> subprocess.Popen[bytes]:
    routes = work / "routes.json"
    endpoint = f"http://127.0.0.1:{upstream_port}"
    table = {
        "version": 1,
        "nodes": {
            "default/echo": {
                "project": "default",
                "node": "echo",
                "access": "public",
                "instances": [{"instance_id": "echo-1", "endpoint": endpoint}],
            }
        },
    }
    routes.write_text(json.dumps(table))
    argv = [sys.executable, "-m", "pier.gateway", "--port", str(port), "--routes-file", str(routes)]
    log = open(work / "gateway.log", "wb")  # noqa: SIM115 - lives as long as the process
    process = subprocess.Popen(pinned(SERVER_CPU, argv), stdout=log, stderr=subprocess.STDOUT)
    wait_for_port(port, process)
    return process


def start_nginx(port: int, upstream_port: int, work: Path) -> subprocess.Popen[bytes]:
    nginx_dir = work / "nginx"
    nginx_dir.mkdir()
    conf = nginx_dir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=nginx_dir, port=port, upstream_port=upstream_port))
    argv = ["nginx", "-p", str(nginx_dir), "-c", str(conf), "-g", "daemon off;"]
    process = subprocess.Popen(pinned(SERVER_CPU, argv))
    wait_for_port(port, process)
    return process


def measure(target: Target, connections: int, duration_s: float) -> tuple[WrkResult, float]:
    """wrk against ``target``; also the proxy's CPU microseconds per request."""
    run_wrk(target.url, connections=connections, duration_s=1)  # warm pools and caches
    before = cpu_seconds(target.pid) if target.pid else 0.0
    result = run_wrk(target.url, connections=connections, duration_s=duration_s)
    after = cpu_seconds(target.pid) if target.pid else 0.0
    return result, (after - before) * 1e6 / max(result.requests, 1)


def print_table(
    results: dict[tuple[str, int], list[tuple[WrkResult, float]]],
    names: list[str],
    concurrencies: list[int],
) -> None:
    header = (
        f"{'target':<10}{'conc':>5}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'x direct':>10}{'+p50 ms':>9}{'proxy CPU us/req':>18}{'errors':>8}"
    )
    print(header)
    print("-" * len(header))
    for connections in concurrencies:
        direct = _median(results[("direct", connections)])
        for name in names:
            runs = results[(name, connections)]
            med = _median(runs)
            cpu = statistics.median(c for _, c in runs)
            ratio = med.requests_per_s / direct.requests_per_s
            added = med.p50_ms - direct.p50_ms
            print(
                f"{name:<10}{connections:>5}{med.requests_per_s:>10.0f}{med.p50_ms:>9.3f}"
                f"{med.p99_ms:>9.3f}{ratio:>10.2f}{added:>+9.3f}"
                f"{(f'{cpu:.1f}' if name != 'direct' else '-'):>18}"
                f"{sum(r.errors for r, _ in runs):>8}"
            )


def _median(runs: list[tuple[WrkResult, float]]) -> WrkResult:
    return WrkResult(
        requests=int(statistics.median(r.requests for r, _ in runs)),
        requests_per_s=statistics.median(r.requests_per_s for r, _ in runs),
        p50_ms=statistics.median(r.p50_ms for r, _ in runs),
        p99_ms=statistics.median(r.p99_ms for r, _ in runs),
        errors=sum(r.errors for r, _ in runs),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--quick", action="store_true", help="3 s runs, 1 round")
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[1, 32], help="wrk connections"
    )
    args = parser.parse_args()
    if args.quick:
        args.duration, args.rounds = 3.0, 1
    require_tools("wrk", "nginx", "taskset")

    with tempfile.TemporaryDirectory(prefix="pier-bench-") as tmp:
        work = Path(tmp)
        ports = {name: free_port() for name in ("upstream", "gateway", "nginx")}
        processes = []
        try:
            upstream = start_upstream(ports["upstream"])
            processes.append(upstream)
            gateway = start_gateway(ports["gateway"], ports["upstream"], work)
            processes.append(gateway)
            nginx = start_nginx(ports["nginx"], ports["upstream"], work)
            processes.append(nginx)
            nginx_workers = child_pids(nginx.pid)
            gateway_workers = child_pids(gateway.pid)  # the parent only holds the socket
            targets = [
                Target("direct", f"http://127.0.0.1:{ports['upstream']}{PATH}", None),
                Target(
                    "pier",
                    f"http://127.0.0.1:{ports['gateway']}/default/nodes/echo{PATH}",
                    gateway_workers[0] if gateway_workers else gateway.pid,
                ),
                Target(
                    "nginx",
                    f"http://127.0.0.1:{ports['nginx']}/default/nodes/echo{PATH}",
                    nginx_workers[0] if nginx_workers else nginx.pid,
                ),
            ]
            results: dict[tuple[str, int], list[tuple[WrkResult, float]]] = defaultdict(list)
            for round_index in range(args.rounds):
                for connections in args.concurrency:
                    for target in targets:
                        result, cpu_us = measure(target, connections, args.duration)
                        results[(target.name, connections)].append((result, cpu_us))
                        print(
                            f"round {round_index + 1} {target.name:<7} c={connections:<3} "
                            f"{result.requests_per_s:>9.0f} req/s  p50 {result.p50_ms:.3f} ms",
                            file=sys.stderr,
                        )
        finally:
            for process in reversed(processes):
                stop(process)
        print(
            f"\n{args.rounds} round(s) of {args.duration:g} s, wrk -t1 on CPU 1, "
            f"servers and proxies on CPU {SERVER_CPU}; median per target\n"
        )
        print_table(results, [t.name for t in targets], args.concurrency)


if __name__ == "__main__":
    main()
