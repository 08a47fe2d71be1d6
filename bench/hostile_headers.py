"""The gateway's memory under clients whose request head never ends.

    uv run python bench/hostile_headers.py [--clients 4] [--mib 128]

Starts ``python -m pier.gateway`` (no routes), reads its RSS idle, then has ``--clients``
connections each send ``--mib`` MiB of one never-ending header line at once, and prints
the gateway's RSS: idle, the highest seen while they send (sampled every 10 ms), and after
they are done. The gateway refuses each head (431) once the bytes fed for it pass its
limits and drops the rest, so the figures should stay within a few MiB of idle.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from _wrk import free_port, stop, wait_for_port

MIB = 2**20
PIECE = b"v" * 65536
HEAD = b"GET /default/nodes/echo/x HTTP/1.1\r\nhost: x\r\nx-never-ends: "


def send_endless_head(port: int, total: int, answers: list[bytes]) -> None:
    """Send ``total`` bytes of one header line that never ends; keep the first answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        try:
            sock.sendall(HEAD)
            for _ in range(total // len(PIECE)):
                sock.sendall(PIECE)
        except OSError:
            pass  # the gateway closed the connection: it refused the head
        try:
            answers.append(sock.recv(200).split(b"\r\n", 1)[0])
        except OSError as e:
            answers.append(repr(e).encode())


def rss_mib(process: psutil.Process) -> float:
    return float(process.memory_info().rss) / MIB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--mib", type=int, default=128, help="MiB each client sends")
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        log = (Path(tmp) / "gateway.log").open("wb")
        gateway = subprocess.Popen(
            [sys.executable, "-m", "pier.gateway", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(port, gateway)
            process = psutil.Process(gateway.pid)
            time.sleep(0.5)
            idle = rss_mib(process)
            answers: list[bytes] = []
            clients = [
                threading.Thread(target=send_endless_head, args=(port, args.mib * MIB, answers))
                for _ in range(args.clients)
            ]
            for client in clients:
                client.start()
            peak = idle
            while any(client.is_alive() for client in clients):
                peak = max(peak, rss_mib(process))
                time.sleep(0.01)
            after = rss_mib(process)
        finally:
            stop(gateway)
            log.close()
    print(f"{args.clients} clients x {args.mib} MiB of a head that never ends")
    print(f"{'gateway RSS':<24}{'MiB':>8}")
    for name, value in (("idle", idle), ("peak while sending", peak), ("after", after)):
        print(f"{name:<24}{value:>8.1f}")
    print("answers:", sorted({answer.decode("latin-1") for answer in answers}))


if __name__ == "__main__":
    main()
