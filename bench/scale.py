"""pier at scale: start-up of N instances per runtime, the controller and `GET nodes` with
many nodes in the store, a route change reaching every gateway.

One table (``--json``: the same rows as JSON):

- ``create→Healthy``: for each runtime of ``--runtimes`` and each N of ``--sizes``, the
  seconds from the API call ``node create --min N`` makes to the node counting N Healthy
  instances (polled every 0.1 s). ``local`` runs the iris ONNX model node of the other
  benches (one model server process an instance); ``docker`` and ``swarm`` run the test
  image ``echo`` (busybox httpd, tests/images/echo) from the local registry, on the main
  engine and on a two-machine swarm that scripts/swarm.sh forms for this run and
  dissolves at the end (reservations off: each machine has this host's CPUs). A runtime
  whose engine is absent is skipped with a line saying why. Each node is deleted (and
  its instances gone) before the next.
- ``route→gateway``: with a second gateway (`pier gateway --control-url --token-file`)
  beside `pier up`'s own, ``--probes`` times a new node of one instance: from its
  instance Healthy (as the API says) to each gateway answering the node's route (no
  longer 404); median and max.
- ``controller tick`` and ``GET nodes``: ``--store-nodes`` nodes in the store,
  ``--running`` of them at ``--min 1``, the rest at ``--min 0``. `pier up` is then
  restarted on the same data dir, so the tick figures of ``GET /api/v1/controller``
  (its last 1024 ticks) are all ticks over that many nodes; after ``--window`` seconds,
  the tick p50/p99 and the latency of ``GET nodes`` (``--requests`` calls), both one
  page of every node (``limit=1000``) and the default first page.
  Below 100 ticks the tick p99 is the slowest tick: one of the first after the restart,
  which adopt the running instances.

    python bench/scale.py [--runtimes local,docker,swarm] [--sizes 1,8,32]
        [--store-nodes 200] [--running 2] [--window 20] [--probes 3] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import docker
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests' images and swarm
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the benches' helpers
from tests.docker.images import build_and_push, missing_prerequisite
from tests.swarm import cluster

from _wrk import free_port, stop, wait_for_port
from controlplane import ms, quantile
from modelnode import iris_model, start_pier
from pier.client import Client
from pier.domain.errors import NotFound
from pier.server import installation_id

RUNTIMES = ("local", "docker", "swarm")
POLL_S = 0.1
HEALTHY_TIMEOUT_S = 600.0
PIER_ENV = {"PIER_SWARM__RESERVATIONS": "false", "PIER_CONTROLLER__STOP_GRACE_S": "1"}


@dataclass
class Row:
    what: str
    where: str
    n: int
    value: float | None
    """Seconds (create→Healthy) or milliseconds (the others); None: skipped."""
    extra: float | None = None
    """p99 or max, as ``unit`` says."""
    unit: str = ""
    note: str = ""


@dataclass
class Pier:
    proc: subprocess.Popen[bytes]
    client: Client
    http: httpx.Client
    gateway_url: str


@contextlib.contextmanager
def running_pier(data_dir: Path, env: dict[str, str]) -> Iterator[Pier]:
    """`pier up` on ``data_dir``; stopped at the end. Instances outlive `pier up` (the
    next one adopts them): when the bench fails, every node that has some is deleted."""
    proc, port, gateway_port = start_pier(data_dir, cpu=None, timeout_s=300.0, env=env)
    token = (data_dir / "admin.token").read_text().strip()
    url = f"http://127.0.0.1:{port}"
    http = httpx.Client(base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=60)
    pier = Pier(proc, Client(url=url, token=token), http, f"http://127.0.0.1:{gateway_port}")
    try:
        yield pier
    except BaseException:
        with contextlib.suppress(Exception):
            nodes = pier.client.list_nodes()
            delete_nodes(pier.client, [n.name for n in nodes if n.instances.total])
        raise
    finally:
        proc.terminate()
        proc.wait(120)
        http.close()
        pier.client.close()


def wait_until(what: str, done: Callable[[], bool], timeout_s: float = HEALTHY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout_s:g} s")
        time.sleep(POLL_S)


def healthy(client: Client, name: str) -> int:
    return client.get_node(name).instances.healthy


def gone(client: Client, name: str) -> bool:
    try:
        client.get_node(name)
    except NotFound:
        return True
    return False


def delete_nodes(client: Client, names: list[str]) -> None:
    """Delete ``names`` and wait until they (and so their instances) are gone."""
    for name in names:
        with contextlib.suppress(NotFound):
            client.delete_node(name)
    for name in names:
        wait_until(f"{name} was not deleted", lambda name=name: gone(client, name))


def time_to_healthy(client: Client, name: str, spec: dict[str, Any], n: int) -> float:
    started = time.monotonic()
    client.create_node(name, **spec, min_instances=n)
    wait_until(f"{name} did not reach {n} Healthy", lambda: healthy(client, name) >= n)
    return time.monotonic() - started


def image_spec(image: str, runtime: str) -> dict[str, Any]:
    health = {"path": "/healthz", "interval_s": 0.5}
    return {"image": image, "port": 8080, "health": health, "runtime": runtime}


def docker_problem() -> str | None:
    try:
        docker.from_env().ping()
    except docker.errors.DockerException as error:
        return f"no Docker engine answers ({error.__class__.__name__})"
    return missing_prerequisite()


def free_swarm_id() -> str:
    """An id no other swarm of scripts/swarm.sh on this machine uses (its directory)."""
    for candidate in range(254, 9, -1):
        if not Path(f"/tmp/pier-swarm-{candidate}").exists():
            return str(candidate)
    raise cluster.SwarmNotFormed("every swarm id is in use")


@contextlib.contextmanager
def swarm_if_wanted(wanted: bool) -> Iterator[cluster.SwarmCluster | str]:
    """The run's own swarm, dissolved at the end; or why there is none."""
    problem = (docker_problem() or cluster.problem()) if wanted else "not asked for"
    if problem is not None:
        yield problem
        return
    swarm_id = free_swarm_id()
    try:
        try:
            formed: cluster.SwarmCluster | str = cluster.form(swarm_id)
        except cluster.SwarmNotFormed as error:
            formed = str(error).strip().splitlines()[-1]  # swarm.sh's reason
        yield formed
    finally:
        cluster.dissolve(swarm_id)


def scale_rows(
    pier: Pier, runtimes: list[str], sizes: list[int], skipped: dict[str, str]
) -> Iterator[Row]:
    specs: dict[str, dict[str, Any]] = {"local": {"model": "iris"}}
    if {"docker", "swarm"} & set(runtimes) - set(skipped):
        echo = build_and_push("echo:1")
        specs |= {rt: image_spec(echo, rt) for rt in ("docker", "swarm")}
    for runtime in runtimes:
        if runtime in skipped:
            yield Row("create→Healthy", runtime, 0, None, note=f"skipped: {skipped[runtime]}")
            continue
        for n in sizes:
            name = f"scale-{runtime}-{n}"
            took = time_to_healthy(pier.client, name, specs[runtime], n)
            delete_nodes(pier.client, [name])
            yield Row("create→Healthy", runtime, n, took, unit="s")


def routed_at(gateway: httpx.Client, name: str) -> float:
    """When ``gateway`` first answers ``name``'s readiness with the instance's 200."""
    path = f"/default/nodes/{name}/v2/health/ready"
    deadline = time.monotonic() + 120
    while (answer := gateway.get(path)).status_code != 200:
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{name} was not routed at {gateway.base_url}: {answer.status_code} "
                f"{answer.text[:200]}"
            )
        time.sleep(0.005)
    return time.monotonic()


def instance_healthy_at(client: Client, name: str) -> float:
    deadline = time.monotonic() + 120
    while not any(i.status == "Healthy" for i in client.instances(name)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} did not turn Healthy")
        time.sleep(0.01)
    return time.monotonic()


def propagation_rows(pier: Pier, second_url: str, probes: int) -> Iterator[Row]:
    gateways = {"pier up's gateway": pier.gateway_url, "second gateway": second_url}
    auth = {"authorization": f"Bearer {pier.client.token}"}
    clients = {label: httpx.Client(base_url=url, headers=auth, timeout=5)
               for label, url in gateways.items()}  # fmt: skip
    delays: dict[str, list[float]] = {label: [] for label in gateways}
    with ThreadPoolExecutor(len(gateways)) as pool:
        for probe in range(probes):
            name = f"probe-{probe}"
            pier.client.create_node(name, model="iris", min_instances=1)
            healthy_at = instance_healthy_at(pier.client, name)
            routed = {label: pool.submit(routed_at, c, name) for label, c in clients.items()}
            for label, future in routed.items():
                delays[label].append(ms(max(future.result() - healthy_at, 0.0)))
            delete_nodes(pier.client, [name])
    listed = pier.http.get("/api/v1/gateways").json()["gateways"]
    note = f"{sum(g['state'] == 'live' for g in listed)} live gateways listed"
    for label, values in delays.items():
        yield Row("route→gateway", label, probes, statistics.median(values), max(values),
                  "ms (median, max)", note)  # fmt: skip
    for c in clients.values():
        c.close()


@contextlib.contextmanager
def second_gateway(data_dir: Path, control_url: str, log_path: Path) -> Iterator[str]:
    """`pier gateway` against ``control_url``, on a free port; its URL."""
    port = free_port()
    argv = [sys.executable, "-m", "pier", "gateway", "--control-url", control_url,
            "--token-file", str(data_dir / "admin.token"), "--port", str(port),
            "--routes-file", str(log_path.parent / "gateway2" / "routes.json")]  # fmt: skip
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, proc, timeout_s=120)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


def fill_store(client: Client, count: int, running: int) -> list[str]:
    """``count`` iris nodes, the first ``running`` at --min 1; the names of those."""

    def create(i: int) -> None:
        name = f"store-{i:04d}"
        if i < running:
            client.create_node(name, model="iris", min_instances=1)
        else:
            client.create_node(name, model="iris", min_instances=0, max_instances=1)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(create, range(count)))
    return [f"store-{i:04d}" for i in range(running)]


def latency_ms(http: httpx.Client, path: str, params: dict[str, str], requests: int) -> list[float]:
    times = []
    for _ in range(requests):
        started = time.monotonic()
        http.get(path, params=params).raise_for_status()
        times.append(ms(time.monotonic() - started))
    return times


def store_rows(pier: Pier, args: argparse.Namespace, running: list[str]) -> Iterator[Row]:
    for name in running:
        wait_until(f"{name} did not turn Healthy", lambda name=name: healthy(pier.client, name))
    time.sleep(args.window)  # the controller's figures over ticks of the full store
    figures = pier.http.get("/api/v1/controller").json()
    where = f"{args.store_nodes} nodes, {len(running)} running"
    yield Row("controller tick", where, figures["ticks"], figures["tick_p50_ms"],
              figures["tick_p99_ms"], "ms (p50, p99)", "n: ticks")  # fmt: skip
    path = "/api/v1/projects/default/nodes"
    for label, params in (("every node", {"limit": "1000"}), ("first page", {})):
        times = latency_ms(pier.http, path, params, args.requests)
        yield Row(f"GET nodes ({label})", where, args.requests, quantile(times, 0.5),
                  quantile(times, 0.99), "ms (p50, p99)", "n: requests")  # fmt: skip


def remove_containers(data_dir: Path) -> None:
    """Any container of this run's installation left on the main engine (none, normally)."""
    with contextlib.suppress(docker.errors.DockerException):
        label = f"pier.installation={installation_id(data_dir)}"
        for container in docker.from_env().containers.list(all=True, filters={"label": label}):
            container.remove(force=True)


def print_table(rows: list[Row]) -> None:
    print(f"{'what':<24} {'where':<22} {'n':>5} {'value':>9} {'p99/max':>9}  unit / note")
    for row in rows:
        value = "-" if row.value is None else f"{row.value:.2f}"
        extra = "-" if row.extra is None else f"{row.extra:.2f}"
        note = "  ".join(part for part in (row.unit, row.note) if part)
        print(f"{row.what:<24} {row.where:<22} {row.n:>5} {value:>9} {extra:>9}  {note}")


def run(args: argparse.Namespace, tmp_path: Path) -> list[Row]:
    runtimes = args.runtimes.split(",")
    unknown = set(runtimes) - set(RUNTIMES)
    if unknown:
        sys.exit(f"--runtimes: unknown {', '.join(sorted(unknown))} (local, docker, swarm)")
    sizes = [int(n) for n in args.sizes.split(",")]
    data_dir = tmp_path / "data"
    rows: list[Row] = []
    skipped: dict[str, str] = {}
    if "docker" in runtimes and (problem := docker_problem()) is not None:
        skipped["docker"] = problem
    with swarm_if_wanted("swarm" in runtimes) as swarm:
        env = dict(PIER_ENV)
        if isinstance(swarm, str):
            skipped["swarm"] = swarm
        else:
            env["PIER_SWARM__DOCKER_HOST"] = swarm.docker_host
        try:
            with running_pier(data_dir, env) as pier:
                blob, _row = iris_model()
                (tmp_path / "iris.onnx").write_bytes(blob)
                pier.client.push_model(tmp_path / "iris.onnx", "iris")
                rows += scale_rows(pier, runtimes, sizes, skipped)
                log = tmp_path / "gateway2.log"
                with second_gateway(data_dir, pier.client.url, log) as second:
                    rows += propagation_rows(pier, second, args.probes)
                running = fill_store(pier.client, args.store_nodes, args.running)
            # a fresh controller, every tick of which saw the full store
            with running_pier(data_dir, env) as pier:
                rows += store_rows(pier, args, running)
                delete_nodes(pier.client, running)
        finally:
            remove_containers(data_dir)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtimes", default=",".join(RUNTIMES), help="local,docker,swarm")
    parser.add_argument("--sizes", default="1,8,32", help="instances per node, in order")
    parser.add_argument("--store-nodes", type=int, default=200, help="nodes in the store")
    parser.add_argument("--running", type=int, default=2, help="of them at --min 1")
    parser.add_argument("--window", type=float, default=20.0, help="ticks before reading, s")
    parser.add_argument("--requests", type=int, default=50, help="GET nodes calls")
    parser.add_argument("--probes", type=int, default=3, help="route changes timed")
    parser.add_argument("--json", action="store_true", help="the rows as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pier-bench-scale-") as tmp:
        rows = run(args, Path(tmp))
    if args.json:
        print(json.dumps([asdict(row) for row in rows], indent=2))
    else:
        print_table(rows)


if __name__ == "__main__":
    main()
