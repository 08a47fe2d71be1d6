"""Proxy overhead of pier's gateway against nginx, in one run, on one load generator.

    uv run python bench/gateway.py [--duration 10] [--rounds 3] [--quick]
        [--upstreams echo model] [--model iris|mlp] [--baseline-src DIR]

Two upstreams, each measured directly, through ``python -m pier.gateway`` (routes from a
routes file) and through nginx (1 worker, upstream keepalive 64, HTTP/1.1 to the
upstream):
  * ``echo``: a bare ASGI app on uvicorn answering a POST with a small JSON body (see
    ``_upstream.py``), as fast as a Python HTTP server gets;
  * ``model``: pier's model server (``python -m pier.modelserver``) with a tiny ONNX
    model (``--model``, built as ``modelnode.py`` builds it), answering V2 inference
    requests: what a model node's instance is behind the gateway.

Servers and proxies run on CPU 0, wrk (one thread) on CPU 1, as in
NOTES-performance.md. Targets are interleaved in rounds and the median of the rounds is
shown, with the ratio to direct throughput, the p50 added to direct, and the CPU time
the proxy process spent per request (user + system). ``--baseline-src DIR`` also runs
the gateway of another source tree (e.g. ``git archive`` of an older commit, its
``src``) as ``pier-base``, so that a change is compared within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from _wrk import (
    BENCH_DIR,
    POST_LUA,
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
from modelnode import infer_body, iris_model, lua_script, mlp_model

SERVER_CPU = 0
ECHO_PATH = "/v2/models/echo/infer"
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
{upstreams}
    server {{
        listen 127.0.0.1:{port};
{locations}
    }}
}}
"""
NGINX_UPSTREAM = """\
    upstream {name} {{
        server 127.0.0.1:{port};
        keepalive 64;
    }}
"""
NGINX_LOCATION = """\
        location /default/nodes/{name}/ {{
            proxy_pass http://{name}/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
"""


@dataclass(frozen=True)
class Backend:
    """An upstream the proxies forward to."""

    name: str
    port: int
    path: str
    """What wrk asks for on the upstream."""
    script: Path
    """The wrk script (its POST body)."""


@dataclass(frozen=True)
class Target:
    name: str
    backend: Backend
    url: str
    pid: int | None
    """The process whose CPU time is the proxy's cost (None: direct)."""


def start_echo(port: int) -> subprocess.Popen[bytes]:
    argv = [sys.executable, str(BENCH_DIR / "_upstream.py"), str(port)]
    process = subprocess.Popen(pinned(SERVER_CPU, argv))
    wait_for_port(port, process)
    return process


def start_model_server(port: int, model: str, work: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """pier's model server with ``model``; returns it and the wrk script for it."""
    blob, row = (iris_model if model == "iris" else mlp_model)()
    path = work / f"{model}.onnx"
    path.write_bytes(blob)
    argv = [sys.executable, "-m", "pier.modelserver", "--name", model, "--path", str(path),
            "--port", str(port)]  # fmt: skip
    log = open(work / "modelserver.log", "wb")  # noqa: SIM115 - lives as long as the process
    process = subprocess.Popen(pinned(SERVER_CPU, argv), stdout=log, stderr=subprocess.STDOUT)
    wait_for_port(port, process)
    _wait_ready(f"http://127.0.0.1:{port}/v2/health/ready", process)
    return process, lua_script(work / f"{model}.lua", infer_body(row))


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{process.args!r} exited with {process.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"{url} not ready after {timeout_s} s")


def start_gateway(
    port: int, backends: list[Backend], work: Path, src: Path | None = None
) -> subprocess.Popen[bytes]:
    """``python -m pier.gateway`` routing ``default/{backend}`` to each backend; ``src``:
    another source tree to run it from."""
    routes = work / f"routes-{port}.json"
    nodes = {
        f"default/{b.name}": {
            "project": "default",
            "node": b.name,
            "access": "public",
            "instances": [{"instance_id": f"{b.name}-1", "endpoint": f"http://127.0.0.1:{b.port}"}],
        }
        for b in backends
    }
    routes.write_text(json.dumps({"version": 1, "nodes": nodes}))
    argv = [sys.executable, "-m", "pier.gateway", "--port", str(port), "--routes-file", str(routes)]
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    log = open(work / f"gateway-{port}.log", "wb")  # noqa: SIM115 - lives as long as the process
    process = subprocess.Popen(
        pinned(SERVER_CPU, argv), stdout=log, stderr=subprocess.STDOUT, env=env
    )
    wait_for_port(port, process)
    return process


def start_nginx(port: int, backends: list[Backend], work: Path) -> subprocess.Popen[bytes]:
    nginx_dir = work / "nginx"
    nginx_dir.mkdir()
    conf = nginx_dir / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            dir=nginx_dir,
            port=port,
            upstreams="".join(NGINX_UPSTREAM.format(name=b.name, port=b.port) for b in backends),
            locations="".join(NGINX_LOCATION.format(name=b.name) for b in backends),
        )
    )
    argv = ["nginx", "-p", str(nginx_dir), "-c", str(conf), "-g", "daemon off;"]
    process = subprocess.Popen(pinned(SERVER_CPU, argv))
    wait_for_port(port, process)
    return process


def measure(target: Target, connections: int, duration_s: float) -> tuple[WrkResult, float]:
    """wrk against ``target``; also the proxy's CPU microseconds per request."""
    script = target.backend.script
    run_wrk(target.url, connections=connections, duration_s=1, script=script)  # warm pools
    before = cpu_seconds(target.pid) if target.pid else 0.0
    result = run_wrk(target.url, connections=connections, duration_s=duration_s, script=script)
    after = cpu_seconds(target.pid) if target.pid else 0.0
    return result, (after - before) * 1e6 / max(result.requests, 1)


Results = dict[tuple[str, str, int], list[tuple[WrkResult, float]]]
"""(backend, target, connections) -> one (wrk result, CPU us/request) per round."""


def print_table(results: Results, targets: list[Target], concurrencies: list[int]) -> None:
    header = (
        f"{'upstream':<9}{'target':<11}{'conc':>5}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'x direct':>10}{'+p50 ms':>9}{'proxy CPU us/req':>18}{'errors':>8}"
    )
    print(header)
    print("-" * len(header))
    backends = list(dict.fromkeys(t.backend.name for t in targets))
    names = list(dict.fromkeys(t.name for t in targets))
    for backend in backends:
        for connections in concurrencies:
            direct = _median(results[(backend, "direct", connections)])
            for name in names:
                runs = results[(backend, name, connections)]
                med = _median(runs)
                cpu = statistics.median(c for _, c in runs)
                ratio = med.requests_per_s / direct.requests_per_s
                added = med.p50_ms - direct.p50_ms
                print(
                    f"{backend:<9}{name:<11}{connections:>5}{med.requests_per_s:>10.0f}"
                    f"{med.p50_ms:>9.3f}{med.p99_ms:>9.3f}{ratio:>10.2f}{added:>+9.3f}"
                    f"{(f'{cpu:.1f}' if name != 'direct' else '-'):>18}"
                    f"{sum(r.errors for r, _ in runs):>8}"
                )
    print("\nratio to direct, each round (same round, same upstream):")
    for backend in backends:
        for connections in concurrencies:
            direct_runs = results[(backend, "direct", connections)]
            for name in names[1:]:
                ratios = [
                    r.requests_per_s / d.requests_per_s
                    for (r, _), (d, _) in zip(
                        results[(backend, name, connections)], direct_runs, strict=True
                    )
                ]
                print(
                    f"  {backend:<7} {name:<10} c={connections:<3} "
                    + " ".join(f"{x:.2f}" for x in ratios)
                )


def _median(runs: list[tuple[WrkResult, float]]) -> WrkResult:
    return WrkResult(
        requests=int(statistics.median(r.requests for r, _ in runs)),
        requests_per_s=statistics.median(r.requests_per_s for r, _ in runs),
        p50_ms=statistics.median(r.p50_ms for r, _ in runs),
        p99_ms=statistics.median(r.p99_ms for r, _ in runs),
        errors=sum(r.errors for r, _ in runs),
    )


def worker_pid(process: subprocess.Popen[bytes], timeout_s: float = 10.0) -> int:
    """The process serving requests: the first child (the parent only holds sockets and
    forks it once it listens, so it may take a moment to appear)."""
    deadline = time.monotonic() + timeout_s
    while not (children := child_pids(process.pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return children[0] if children else process.pid


def _targets(
    backends: list[Backend], proxies: dict[str, tuple[int, subprocess.Popen[bytes]]]
) -> list[Target]:
    targets = []
    for backend in backends:
        direct = f"http://127.0.0.1:{backend.port}{backend.path}"
        targets.append(Target("direct", backend, direct, None))
        for name, (port, process) in proxies.items():
            url = f"http://127.0.0.1:{port}/default/nodes/{backend.name}{backend.path}"
            targets.append(Target(name, backend, url, worker_pid(process)))
    return targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--quick", action="store_true", help="3 s runs, 1 round")
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[1, 32], help="wrk connections"
    )
    parser.add_argument(
        "--upstreams", nargs="+", choices=("echo", "model"), default=["echo", "model"]
    )
    parser.add_argument("--model", choices=("iris", "mlp"), default="iris")
    parser.add_argument(
        "--baseline-src", type=Path, help="also run the gateway of this source tree (pier-base)"
    )
    args = parser.parse_args()
    if args.quick:
        args.duration, args.rounds = 3.0, 1
    require_tools("wrk", "nginx", "taskset")

    with tempfile.TemporaryDirectory(prefix="pier-bench-") as tmp:
        work = Path(tmp)
        processes: list[subprocess.Popen[bytes]] = []
        results: Results = defaultdict(list)
        try:
            backends = []
            if "echo" in args.upstreams:
                port = free_port()
                processes.append(start_echo(port))
                backends.append(Backend("echo", port, ECHO_PATH, POST_LUA))
            if "model" in args.upstreams:
                port = free_port()
                process, script = start_model_server(port, args.model, work)
                processes.append(process)
                backends.append(Backend("model", port, f"/v2/models/{args.model}/infer", script))
            proxies: dict[str, tuple[int, subprocess.Popen[bytes]]] = {}
            port = free_port()
            proxies["pier"] = (port, start_gateway(port, backends, work))
            if args.baseline_src is not None:
                port = free_port()
                base = start_gateway(port, backends, work, args.baseline_src)
                proxies["pier-base"] = (port, base)
            port = free_port()
            proxies["nginx"] = (port, start_nginx(port, backends, work))
            processes += [process for _, process in proxies.values()]
            targets = _targets(backends, proxies)
            for round_index in range(args.rounds):
                for connections in args.concurrency:
                    for target in targets:
                        result, cpu_us = measure(target, connections, args.duration)
                        key = (target.backend.name, target.name, connections)
                        results[key].append((result, cpu_us))
                        print(
                            f"round {round_index + 1} {target.backend.name:<6} "
                            f"{target.name:<10} c={connections:<3} "
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
        print_table(results, targets, args.concurrency)


if __name__ == "__main__":
    main()
