"""Shared bench helpers: run wrk pinned to a CPU, parse its output, watch process CPU time.

Figures on shared machines move a lot from run to run, so benchmarks interleave their
targets in rounds and report medians; the CPU time a server process spends per request
(from /proc, user + system) is steadier than requests/s and says where the time goes.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
POST_LUA = BENCH_DIR / "post.lua"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


@dataclass(frozen=True)
class WrkResult:
    requests: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int


def require_tools(*names: str) -> None:
    """Exit with a clear message if a tool the benchmark needs is missing."""
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        sys.exit(
            f"missing {', '.join(missing)}: `make bench` installs them "
            f"(or: apt-get install -y {' '.join(missing)})"
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    """Return once something accepts on ``port``; fail if ``process`` exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{process.args!r} exited with {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on port {port} after {timeout_s} s")


def pinned(cpu: int, argv: list[str]) -> list[str]:
    """``argv`` run on one CPU (taskset execs it, so the pid stays the program's)."""
    return ["taskset", "-c", str(cpu), *argv]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def child_pids(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def run_wrk(
    url: str, *, connections: int, duration_s: float, cpu: int = 1, script: Path = POST_LUA
) -> WrkResult:
    """One wrk run (one thread) against ``url``; raises if wrk fails."""
    argv = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration_s:g}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    out = subprocess.run(pinned(cpu, argv), capture_output=True, text=True, check=True).stdout
    return parse_wrk(out)


def parse_wrk(out: str) -> WrkResult:
    """Requests, requests/s, p50, p99 and errors from wrk's ``--latency`` output."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if rps is None or total is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out)) + sum(
        int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out)
    )
    return WrkResult(
        requests=int(total.group(1)),
        requests_per_s=float(rps.group(1)),
        p50_ms=_percentile(out, "50"),
        p99_ms=_percentile(out, "99"),
        errors=errors,
    )


def _percentile(out: str, which: str) -> float:
    match = re.search(rf"^\s+{which}(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no p{which} in wrk output:\n{out}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
