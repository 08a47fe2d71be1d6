"""The control plane's idle cost: CPU share, reconcile pass, `GET nodes`, route propagation.

Starts a real `pier up` (local runtime) and, for each count of ``--counts`` in turn, brings
that many idle iris ONNX nodes of one instance each (nothing calls them), then measures
over ``--window`` seconds:

- the CPU share of one core used by the `pier up` process (the control plane: API,
  controller, store thread) and by the gateway process; the model-server instances are
  other processes and are left out;
- the reconcile pass (one controller tick) p50/p99, from ``GET /api/v1/controller``
  (n/a on a pier that does not expose it);
- ``GET nodes`` latency (median of 20);
- route propagation: one more node, from its instance turning Healthy (as the API says)
  to the gateway answering its route (no longer 404);
- the burst-create time of the nodes added for this count (all ``node create`` calls at
  once, from the first call to every node Healthy), with the p99 of ``GET /healthz``
  meanwhile.

With ``--zero N`` a last round adds N nodes with ``--min 0`` (scaled to zero).
``--thousand`` is ``--counts 100 --zero 900``: 1000 nodes in the store, 100 of them
running an instance (``GET nodes`` is then one page of the default size).

    python bench/controlplane.py [--counts 0,50,150] [--window 60] [--zero 0]
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from modelnode import iris_model, start_pier
from pier.client import Client


def cpu_s(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def processes(pier_pid: int) -> tuple[psutil.Process, list[psutil.Process]]:
    """The `pier up` process and the gateway's (its supervisor and workers); the model
    servers are the other children."""
    pier = psutil.Process(pier_pid)
    for child in pier.children():
        if "pier.gateway" in " ".join(child.cmdline()):
            return pier, [child, *child.children(recursive=True)]
    return pier, []


def instances_cpu_s(pier_pid: int) -> tuple[int, float]:
    """The model-server processes and the CPU seconds they used in all (after a burst,
    while nothing calls them: what starting them cost)."""
    pier, gateway = processes(pier_pid)
    others = {p.pid for p in gateway}
    servers = [c for c in pier.children(recursive=True) if c.pid not in others]
    return len(servers), sum(cpu_s(p) for p in servers)


def cpu_shares(pier_pid: int, window_s: float) -> tuple[float, float]:
    """Percent of one core used by the control plane and by the gateway over the window."""
    pier, gateway = processes(pier_pid)
    before = (cpu_s(pier), sum(cpu_s(p) for p in gateway))
    time.sleep(window_s)
    after = (cpu_s(pier), sum(cpu_s(p) for p in gateway))
    return 100 * (after[0] - before[0]) / window_s, 100 * (after[1] - before[1]) / window_s


def ms(seconds: float) -> float:
    return seconds * 1000.0


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Bench:
    def __init__(self, url: str, token: str, gateway_url: str) -> None:
        self.url = url
        self.client = Client(url=url, token=token)
        self.http = httpx.Client(
            base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=300
        )
        self.gateway = httpx.Client(base_url=gateway_url, timeout=5)
        self.created = 0

    def new_names(self, count: int, prefix: str = "n") -> list[str]:
        names = [f"{prefix}{self.created + i}" for i in range(count)]
        self.created += count
        return names

    def healthy(self) -> set[str]:
        return {n["name"] for n in self.nodes() if n["status"] == "Healthy"}

    def nodes(self) -> list[dict]:
        """Every node, page after page."""
        nodes: list[dict] = []
        params: dict[str, str] = {"limit": "1000"}
        while True:
            page = self.http.get("/api/v1/projects/default/nodes", params=params).json()
            nodes += page["nodes"]
            if page.get("next_after") is None:
                return nodes
            params["after"] = page["next_after"]

    def burst(self, names: list[str], min_instances: int = 1) -> tuple[float, float]:
        """Create ``names`` at once; seconds until all are Healthy, p99 ms of /healthz."""
        started = time.monotonic()
        stop = threading.Event()
        pings: list[float] = []
        pinger = threading.Thread(target=self._ping, args=(stop, pings), daemon=True)
        pinger.start()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda n: self._create(n, min_instances), names))
        wanted = set(names) if min_instances else set()
        while wanted - self.healthy():
            if time.monotonic() - started > 600:
                sys.exit("nodes did not turn Healthy within 600 s")
            time.sleep(0.25)
        took = time.monotonic() - started
        stop.set()
        pinger.join()
        return took, ms(quantile(pings, 0.99))

    def _create(self, name: str, min_instances: int) -> None:
        spec = {"model": "iris", "min_instances": min_instances}
        if min_instances == 0:
            spec["max_instances"] = 1
        response = self.http.post(
            "/api/v1/projects/default/nodes", json={"name": name, "spec": spec}
        )
        response.raise_for_status()

    def _ping(self, stop: threading.Event, into: list[float]) -> None:
        with httpx.Client(base_url=self.url, timeout=300) as http:
            while not stop.is_set():
                started = time.monotonic()
                with contextlib.suppress(httpx.HTTPError):  # counted with the time it took
                    http.get("/healthz")
                into.append(time.monotonic() - started)
                time.sleep(0.05)

    def get_nodes_ms(self) -> float:
        times = []
        for _ in range(20):
            started = time.monotonic()
            self.http.get("/api/v1/projects/default/nodes").raise_for_status()
            times.append(time.monotonic() - started)
        return ms(statistics.median(times))

    def reconcile_ms(self) -> tuple[float, float] | None:
        response = self.http.get("/api/v1/controller")
        if response.status_code != 200:
            return None
        body = response.json()
        return body["tick_p50_ms"], body["tick_p99_ms"]

    def propagation_ms(self) -> float:
        """From one new node's instance Healthy (API) to its route at the gateway."""
        [name] = self.new_names(1, prefix="probe")
        self._create(name, 1)
        path = f"/api/v1/projects/default/nodes/{name}/instances"
        deadline = time.monotonic() + 120
        while True:
            instances = self.http.get(path).json()["instances"]
            if any(i["status"] == "Healthy" for i in instances):
                healthy_at = time.monotonic()
                break
            if time.monotonic() > deadline:
                sys.exit(f"{name} did not turn Healthy")
            time.sleep(0.01)
        while self.gateway.get(f"/default/nodes/{name}/v2/health/ready").status_code == 404:
            if time.monotonic() > deadline:
                sys.exit(f"{name} was not routed")
            time.sleep(0.005)
        return ms(time.monotonic() - healthy_at)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="0,50,150", help="idle node counts, in order")
    parser.add_argument("--window", type=float, default=60.0, help="CPU window, seconds")
    parser.add_argument("--zero", type=int, default=0, help="then add N nodes at --min 0")
    parser.add_argument(
        "--thousand", action="store_true", help="1000 nodes, 100 running: --counts 100 --zero 900"
    )
    parser.add_argument(
        "--profile", metavar="PATH", type=Path,
        help="at the end, sample `pier up` with py-spy for --window s into PATH (collapsed)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.thousand:
        args.counts, args.zero = "100", 900
    counts = [int(c) for c in args.counts.split(",")]
    with tempfile.TemporaryDirectory(prefix="pier-bench-cp-") as tmp:
        tmp_path = Path(tmp)
        data_dir = tmp_path / "data"
        proc, port, gateway_port = start_pier(data_dir, cpu=None, timeout_s=300.0)
        rows = []
        try:
            token = (data_dir / "admin.token").read_text().strip()
            bench = Bench(f"http://127.0.0.1:{port}", token, f"http://127.0.0.1:{gateway_port}")
            blob, _row = iris_model()
            (tmp_path / "iris.onnx").write_bytes(blob)
            bench.client.push_model(tmp_path / "iris.onnx", "iris")
            rounds = [(count, 1) for count in counts]
            if args.zero:
                rounds.append((bench.created + counts[-1] + args.zero, 0))
            have = 0
            for count, min_instances in rounds:
                added = count - have
                burst = bench.burst(bench.new_names(added), min_instances) if added else None
                have = count
                propagation = bench.propagation_ms()
                have += 1
                time.sleep(min(5.0, args.window))  # let the burst settle
                servers, servers_cpu_s = instances_cpu_s(proc.pid)
                print(f"{servers} model servers used {servers_cpu_s:.1f} s of CPU in all")
                cp, gw = cpu_shares(proc.pid, args.window)
                rows.append((bench.created, added, burst, cp, gw, bench.reconcile_ms(),
                             bench.get_nodes_ms(), propagation))  # fmt: skip
                print_row(rows[-1], header=len(rows) == 1, window_s=args.window)
            if args.profile:
                profile(proc.pid, args.window, args.profile)
        finally:
            proc.terminate()
            proc.wait(120)


def profile(pid: int, window_s: float, path: Path) -> None:
    """py-spy's samples of ``pid`` taken while a thread holds the GIL (what the process
    spends running, not waiting), collapsed stacks."""
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        sys.exit("py-spy is missing: pip install py-spy (or uv run --with py-spy)")
    argv = [py_spy, "record", "--pid", str(pid), "--duration", f"{window_s:.0f}",
            "--format", "raw", "--output", str(path), "--rate", "200", "--gil"]  # fmt: skip
    subprocess.run(argv, check=True, capture_output=True)
    print(f"profile of `pier up` written to {path}")


def print_row(row: tuple, *, header: bool, window_s: float) -> None:
    nodes, added, burst, cp, gw, reconcile, get_ms, propagation = row
    if header:
        print(f"CPU share of one core over {window_s:g} s (model servers excluded)")
        print(
            f"{'nodes':>5} {'cp %':>6} {'gw %':>6} {'tick p50':>9} {'tick p99':>9} "
            f"{'GET ms':>7} {'route ms':>9} {'burst':>5} {'burst s':>8} {'healthz p99':>11}"
        )
    p50, p99 = reconcile if reconcile else (float("nan"), float("nan"))
    took, ping_p99 = burst if burst else (float("nan"), float("nan"))
    print(
        f"{nodes:>5} {cp:>6.2f} {gw:>6.2f} {p50:>9.2f} {p99:>9.2f} {get_ms:>7.2f} "
        f"{propagation:>9.1f} {added:>5} {took:>8.2f} {ping_p99:>11.1f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
