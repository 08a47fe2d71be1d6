"""NVIDIA's perf_analyzer against a pier model node, through the gateway, no shim.

perf_analyzer reads the node's model metadata and configuration (Triton's extensions,
which pier's model server answers), generates inputs from them and measures throughput
and latency at each concurrency. It comes from tritonclient's older wheels (2.41 ships
``bin/perf_analyzer``) and needs Debian's ``libb64-0d`` and a CUDA runtime library,
even on CPU (PyPI's ``nvidia-cuda-runtime-cu12``): ``make perf-analyzer`` puts both
wheels in ``.venv/perf_analyzer``, ``scripts/install-system-packages.sh bench`` the
Debian package. `pier up` runs on CPU 0, perf_analyzer on CPU 1.

    python bench/perf_analyzer.py [--perf-analyzer-dir .venv/perf_analyzer]
        [--concurrency 1:32:31] [--interval-ms 3000] [--engine pier|triton]
"""

from __future__ import annotations

import argparse
import csv
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _compute_model import compute_model
from _wrk import pinned
from modelnode import start_pier
from pier.client import Client

MAX_BATCH_SIZE = 32


def perf_analyzer(
    tool_dir: Path, url: str, token: str, concurrency: str, interval_ms: int, report: Path
) -> None:
    """Run perf_analyzer on model ``big`` at ``url`` (host:port/path), its CSV to ``report``."""
    env = {**os.environ, "LD_LIBRARY_PATH": str(tool_dir / "nvidia" / "cuda_runtime" / "lib")}
    argv = [
        str(tool_dir / "bin" / "perf_analyzer"), "-m", "big", "-u", url, "-i", "http",
        "-H", f"Authorization: Bearer {token}", "--concurrency-range", concurrency,
        "--measurement-interval", str(interval_ms), "--stability-percentage", "50",
        "--max-trials", "4", "-f", str(report),
    ]  # fmt: skip
    subprocess.run(pinned(1, argv), env=env, check=True)


def print_report(report: Path, engine: str) -> None:
    print(f"\nperf_analyzer, compute-bound MLP through the gateway, engine {engine}, "
          f"--max-batch-size {MAX_BATCH_SIZE}")  # fmt: skip
    header = f"{'conc':>4} {'infer/s':>9} {'p50 ms':>8} {'p99 ms':>8}"
    print(header)
    print("-" * len(header))
    with report.open() as file:
        for row in csv.DictReader(file):
            print(
                f"{row['Concurrency']:>4} {float(row['Inferences/Second']):>9.0f} "
                f"{int(row['p50 latency']) / 1000:>8.2f} {int(row['p99 latency']) / 1000:>8.2f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--perf-analyzer-dir", type=Path, default=Path(".venv/perf_analyzer"))
    parser.add_argument("--concurrency", default="1:32:31", help="start:end:step")
    parser.add_argument("--interval-ms", type=int, default=3000)
    parser.add_argument("--engine", choices=("pier", "triton"), default="pier")
    args = parser.parse_args()
    if not (args.perf_analyzer_dir / "bin" / "perf_analyzer").exists():
        sys.exit(f"no perf_analyzer in {args.perf_analyzer_dir}: run `make perf-analyzer`")
    with tempfile.TemporaryDirectory(prefix="pier-perf-") as tmp:
        tmp_path = Path(tmp)
        proc, port, gateway_port = start_pier(tmp_path / "data")
        try:
            token = (tmp_path / "data" / "admin.token").read_text().strip()
            with Client(url=f"http://127.0.0.1:{port}", token=token) as client:
                (tmp_path / "big.onnx").write_bytes(compute_model()[0])
                client.push_model(tmp_path / "big.onnx", "big")
                client.create_node(
                    "big", model="big", engine=args.engine, max_batch_size=MAX_BATCH_SIZE
                )
                client.wait_node("big", timeout_s=120)
            url = f"127.0.0.1:{gateway_port}/default/nodes/big"
            report = tmp_path / "perf.csv"
            perf_analyzer(
                args.perf_analyzer_dir, url, token, args.concurrency, args.interval_ms, report
            )
            print_report(report, args.engine)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(60)


if __name__ == "__main__":
    main()
