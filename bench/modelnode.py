"""Model nodes through pier's gateway: requests/s and p50/p99 at concurrency 1 and 32.

A second table is about dynamic batching, on a compute-bound model (an MLP
512→2048→2048→10, see ``_compute_model.py``) at concurrency 1, 8 and 32: the same
model on a node without batching ("big") and with ``max_batch_size`` 32 ("big-batch"),
through the gateway ("gw") and direct to its instance ("direct"); pier's model server
started by hand with one batch worker (a node's instance has one per vCPU of its
configuration, 2 for c1.2); the model on ``--engine triton`` ("big-triton", unless
``--no-triton``); and, with ``--pytriton-python PY`` (a Python that has
``nvidia-pytriton`` and ``onnxruntime``), PyTriton with its dynamic batcher on the same
ONNX file, on CPU 0. ``--batching-only`` skips the first table. Every server runs in a
session of its own, as pier's instances do: with the kernel's autogroup scheduling, on
a loaded machine a server in the bench's session got about twice the CPU share of one
in its own, so same-run ratios compared the scheduler, not the servers. The CPU time
per request (the server's whole process tree) does not depend on that share.

Two models: the ONNX logistic regression on iris of the tests, and a 64→256→10 MLP
(scikit-learn, exported to ONNX). `pier up` and everything it starts (gateway, model
server instances) run on CPU 0; wrk, with a Lua POST script carrying a V2 JSON request,
runs on CPU 1. Each model is measured directly against its instance and through the
gateway in the same run, so the ratio says what the gateway costs.

With ``--image REF`` (an image that has pier's model server, e.g. the test image
``tests/docker/python_image.py`` builds), the MLP is also served from that image by the
docker runtime ("mlp-img"): the same model server in a container, reached through the
engine's published port, so its rows say what the container costs. Containers are not
pinned to CPU 0.

    python bench/modelnode.py [--duration 10] [--quick] [--image REF] [--pytriton-python PY]
        [--batching-only] [--no-triton]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _compute_model import compute_model
from _wrk import cpu_seconds, free_port, pinned, require_tools, run_wrk, stop, wait_for_port
from pier.client import Client

CONCURRENCY = (1, 32)
BATCH_CONCURRENCY = (1, 8, 32)
MAX_BATCH_SIZE = 32


def iris_model() -> tuple[bytes, list[float]]:
    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    x = x.astype(np.float32)
    clf = LogisticRegression(max_iter=500).fit(x, y)
    onnx = to_onnx(clf, x[:1], options={id(clf): {"zipmap": False}}, target_opset=17)
    return onnx.SerializeToString(), x[0].tolist()


def mlp_model() -> tuple[bytes, list[float]]:
    from skl2onnx import to_onnx
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 64)).astype(np.float32)
    y = rng.integers(0, 10, size=2000)
    with warnings.catch_warnings():  # random labels: it is the shape that matters, not fit
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(hidden_layer_sizes=(256,), max_iter=20).fit(x, y)
    onnx = to_onnx(clf, x[:1], options={id(clf): {"zipmap": False}}, target_opset=17)
    return onnx.SerializeToString(), x[0].tolist()


def lua_script(path: Path, body: dict, token: str | None = None) -> Path:
    """A wrk script POSTing ``body`` as JSON (with a bearer token, if given)."""
    auth = f'wrk.headers["Authorization"] = "Bearer {token}"\n' if token else ""
    path.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(json.dumps(body))}\n"
        'wrk.headers["Content-Type"] = "application/json"\n' + auth
    )
    return path


def infer_body(row: list[float]) -> dict:
    """A V2 inference request with one row for the model's input ``X``."""
    return {"inputs": [{"name": "X", "shape": [1, len(row)], "datatype": "FP32", "data": row}]}


def measure(url: str, script: Path, connections: int, duration_s: float) -> object:
    """One wrk run after a second of warm-up."""
    run_wrk(url, connections=connections, duration_s=1.0, script=script)
    return run_wrk(url, connections=connections, duration_s=duration_s, script=script)


def start_pytriton(
    python: str, model_path: Path, log_path: Path
) -> tuple[subprocess.Popen[bytes], int]:
    """PyTriton on CPU 0 serving ``model_path`` as ``big``; its HTTP port."""
    ports = [free_port() for _ in range(3)]
    libdir = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_config_var('LIBDIR'))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    env = {**os.environ, "LD_LIBRARY_PATH": libdir}  # else Triton loads another libpython
    server = str(Path(__file__).resolve().parent / "_pytriton_server.py")
    argv = [python, server, str(model_path), *map(str, ports)]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            pinned(0, argv), stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    wait_for_port(ports[0], proc, timeout_s=120)
    return proc, ports[0]


def start_model_server(
    model_path: Path, log_path: Path, *, workers: int
) -> tuple[subprocess.Popen[bytes], int]:
    """pier's model server by hand on CPU 0, batching with ``workers`` batch workers."""
    port = free_port()
    argv = [sys.executable, "-m", "pier.modelserver", "--name", "big", "--format", "onnx",
            "--path", str(model_path), "--port", str(port), "--workers", str(workers),
            "--max-batch-size", str(MAX_BATCH_SIZE)]  # fmt: skip
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            pinned(0, argv), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    wait_for_port(port, proc, timeout_s=60)
    return proc, port


@dataclass
class Target:
    url: str
    pid: int | None = None
    """The server's process (CPU time is counted over its whole tree), when it is ours."""
    stats: str | None = None
    """pier's /v2/models/big/stats: rows per batch."""


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (PyTriton: its proxy, tritonserver, the stub)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        found.append(todo.pop())
        todo += children.get(found[-1], [])
    return found


def tree_cpu_s(pid: int) -> float:
    total = 0.0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            total += cpu_seconds(member)
    return total


def batch_counts(stats_url: str) -> tuple[int, int]:
    """(inferences, executions) of pier's statistics extension."""
    stats = httpx.get(stats_url).json()["model_stats"][0]
    return stats["inference_count"], stats["execution_count"]


def measure_target(
    target: Target, script: Path, connections: int, duration_s: float
) -> tuple[object, float | None, float | None]:
    """One wrk run; the server's CPU µs per request and rows per batch, where known."""
    run_wrk(target.url, connections=connections, duration_s=1.0, script=script)
    cpu0 = None if target.pid is None else tree_cpu_s(target.pid)
    counts0 = None if target.stats is None else batch_counts(target.stats)
    result = run_wrk(target.url, connections=connections, duration_s=duration_s, script=script)
    requests = max(result.requests, 1)
    cpu_us = None if cpu0 is None else (tree_cpu_s(target.pid) - cpu0) / requests * 1e6
    rows = None
    if counts0 is not None:
        inferences, executions = batch_counts(target.stats)
        rows = (inferences - counts0[0]) / max(executions - counts0[1], 1)
    return result, cpu_us, rows


def batching_rows(
    client: Client,
    tmp_path: Path,
    gateway_port: int,
    token: str,
    args: argparse.Namespace,
    duration_s: float,
) -> list[tuple[str, int, object, float | None, float | None]]:
    """The compute-bound model without and with dynamic batching, through the gateway and
    direct to the instance; pier's model server with one batch worker; engine triton;
    PyTriton. Measured in rounds (each target in turn at each concurrency), so that a
    change of the machine's load hits every target alike."""
    blob, row = compute_model()
    path = tmp_path / "big.onnx"
    path.write_bytes(blob)
    client.push_model(path, "big")
    client.create_node("big", model="big", min_instances=1)
    client.create_node("big-batch", model="big", min_instances=1, max_batch_size=MAX_BATCH_SIZE)
    if not args.no_triton:
        client.create_node(
            "big-triton", model="big", engine="triton", max_batch_size=MAX_BATCH_SIZE
        )
    script = lua_script(tmp_path / "big.lua", infer_body(row), token)
    targets: dict[str, Target] = {}
    for name in ("big", "big-batch", *(() if args.no_triton else ("big-triton",))):
        client.wait_node(name, timeout_s=120)
        targets[f"{name} gw"] = Target(
            f"http://127.0.0.1:{gateway_port}/default/nodes/{name}/v2/models/big/infer"
        )
        if name != "big":
            [instance] = client.instances(name)
            stats = f"{instance.endpoint}/v2/models/big/stats" if name == "big-batch" else None
            url = f"{instance.endpoint}/v2/models/big/infer"
            targets[f"{name} direct"] = Target(url, None, stats)
    servers = []
    proc, port = start_model_server(path, tmp_path / "one-worker.log", workers=1)
    servers.append(proc)
    base = f"http://127.0.0.1:{port}/v2/models/big"
    targets["big-batch 1 worker direct"] = Target(f"{base}/infer", proc.pid, f"{base}/stats")
    if args.pytriton_python:
        proc, port = start_pytriton(args.pytriton_python, path, tmp_path / "pytriton.log")
        servers.append(proc)
        url = f"http://127.0.0.1:{port}/v2/models/big/infer"
        targets["pytriton direct"] = Target(url, proc.pid)
    try:
        return [
            (target, connections, *measure_target(t, script, connections, duration_s))
            for connections in BATCH_CONCURRENCY
            for target, t in targets.items()
        ]
    finally:
        for server in servers:
            stop(server)


def start_pier(
    data_dir: Path,
    *,
    cpu: int | None = 0,
    timeout_s: float = 60.0,
    env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], int, int]:
    """`pier up` on free ports, on CPU ``cpu`` (None: any), with ``env`` added to this
    process's environment; (process, API port, gateway port) once it says it is up."""
    port, gateway_port = free_port(), free_port()
    log_path = data_dir.parent / "pier-up.log"
    argv = [sys.executable, "-m", "pier", "up", "--data-dir", str(data_dir), "--port",
            str(port), "--gateway-port", str(gateway_port)]  # fmt: skip
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            argv if cpu is None else pinned(cpu, argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    deadline = time.monotonic() + timeout_s
    while b"pier is up" not in log_path.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            sys.exit("pier up did not start:\n" + log_path.read_text())
        time.sleep(0.1)
    return proc, port, gateway_port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--quick", action="store_true", help="3 s runs")
    parser.add_argument("--image", metavar="REF", help="also serve the MLP from this image")
    parser.add_argument("--batching-only", action="store_true", help="only the batching table")
    parser.add_argument("--no-triton", action="store_true", help="no --engine triton node")
    parser.add_argument(
        "--pytriton-python",
        metavar="PY",
        help="a Python with nvidia-pytriton and onnxruntime: also measure PyTriton",
    )
    args = parser.parse_args()
    duration_s = 3.0 if args.quick else args.duration
    require_tools("wrk", "taskset")
    with tempfile.TemporaryDirectory(prefix="pier-bench-") as tmp:
        tmp_path = Path(tmp)
        data_dir = tmp_path / "data"
        proc, port, gateway_port = start_pier(data_dir)
        rows = []
        try:
            token = (data_dir / "admin.token").read_text().strip()
            client = Client(url=f"http://127.0.0.1:{port}", token=token)
            models = {} if args.batching_only else {"iris": iris_model(), "mlp": mlp_model()}
            for name, (blob, _row) in models.items():
                path = tmp_path / f"{name}.onnx"
                path.write_bytes(blob)
                client.push_model(path, name)
                client.create_node(name, model=name, min_instances=1)
            if args.image:
                client.create_node("mlp-img", model="mlp", image=args.image, min_instances=1)
                models["mlp-img"] = models["mlp"]
            for name, (_, row) in models.items():
                model = name.removesuffix("-img")
                client.wait_node(name, timeout_s=120)
                [instance] = client.instances(name)
                script = lua_script(tmp_path / f"{name}.lua", infer_body(row), token)
                targets = {
                    "direct": f"{instance.endpoint}/v2/models/{model}/infer",
                    "gateway": f"http://127.0.0.1:{gateway_port}/default/nodes/{name}"
                               f"/v2/models/{model}/infer",
                }  # fmt: skip
                for connections in CONCURRENCY:
                    results = {
                        target: measure(url, script, connections, duration_s)
                        for target, url in targets.items()
                    }
                    direct = results["direct"]
                    for target, r in results.items():
                        rows.append((name, target, connections, r, direct))
            batched = batching_rows(client, tmp_path, gateway_port, token, args, duration_s)
            client.close()
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(60)
    print_table(rows, duration_s)
    print_batching_table(batched, with_pytriton=bool(args.pytriton_python))


def print_table(rows: list, duration_s: float) -> None:
    print(
        f"\nmodel nodes, {duration_s:g} s per run; pier on CPU 0, wrk on CPU 1 "
        f"({os.cpu_count()} CPUs)"
    )
    header = (
        f"{'model':7} {'path':8} {'conc':>4} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'x direct':>9} {'+p50 ms':>8} {'errors':>6}"
    )
    print(header)
    print("-" * len(header))
    for name, target, conc, r, direct in rows:
        ratio = r.requests_per_s / direct.requests_per_s
        print(
            f"{name:7} {target:8} {conc:>4} {r.requests_per_s:>9.0f} {r.p50_ms:>8.3f} "
            f"{r.p99_ms:>8.3f} {ratio:>9.2f} {r.p50_ms - direct.p50_ms:>8.3f} {r.errors:>6}"
        )
    print(
        "\nreference, measured here with their defaults on one core, MLP at concurrency 32: "
        "PyTriton ~1950 req/s, MLServer ~860, BentoML ~750, Ray Serve <100; target > 3000"
    )


def print_batching_table(rows: list, *, with_pytriton: bool) -> None:
    print(
        f"\ncompute-bound MLP 512-2048-2048-10, through the gateway (gw) or to the server "
        f"(direct); batching: --max-batch-size {MAX_BATCH_SIZE}; big-triton: --engine triton; "
        "cpu us/req: the server's process tree (servers the bench started); rows/batch: "
        "pier's statistics; x pytriton: requests/s over PyTriton's at that concurrency"
    )
    pytriton = {conc: r.requests_per_s for t, conc, r, _, _ in rows if t == "pytriton direct"}
    header = (
        f"{'server':26} {'conc':>4} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} "
        f"{'cpu us/req':>10} {'rows/batch':>10} {'x pytriton':>10}"
    )
    print(header)
    print("-" * len(header))
    for target, conc, r, cpu_us, batch_rows in rows:
        ratio = f"{r.requests_per_s / pytriton[conc]:.2f}" if conc in pytriton else "-"
        cpu = "-" if cpu_us is None else f"{cpu_us:.0f}"
        per_batch = "-" if batch_rows is None else f"{batch_rows:.1f}"
        print(
            f"{target:26} {conc:>4} {r.requests_per_s:>9.0f} {r.p50_ms:>8.3f} "
            f"{r.p99_ms:>8.3f} {r.errors:>6} {cpu:>10} {per_batch:>10} {ratio:>10}"
        )
    if not with_pytriton:
        print("PyTriton not measured: give --pytriton-python PY (a Python with nvidia-pytriton)")


if __name__ == "__main__":
    main()
