"""The test session's own two-machine Docker Swarm, formed by scripts/swarm.sh.

Two dockerd, each in a network namespace of its own (a manager and a worker), joined by
a bridge; nothing runs on the machine's main engine. ``form()`` starts it (about 4 s) and
``dissolve()`` stops everything it started; the session fixture ``swarm_cluster``
(tests/conftest.py) does both, the second even when tests fail. A namespace reaches the
host's registry at 127.0.0.1:5000, so the test images pushed there run on both machines.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

SCRIPT: Final = Path(__file__).resolve().parents[2] / "scripts" / "swarm.sh"
UP_TIMEOUT_S: Final = 90.0


class SwarmNotFormed(Exception):
    """The swarm could not be formed here; the message says why."""


@dataclass(frozen=True)
class SwarmCluster:
    swarm_id: str
    docker_host: str
    """The manager's engine: what pier gets as DOCKER_HOST."""
    worker_host: str
    manager_address: str
    worker_address: str
    manager_name: str
    worker_name: str

    def kill_worker(self) -> None:
        """The worker machine dies: its daemon, containerd and containers are SIGKILLed."""
        _script("kill-worker", self.swarm_id)

    def forward(self, port: int) -> None:
        """Make the host's 127.0.0.1:``port`` (a second registry) 127.0.0.1:``port`` of
        every machine too."""
        _script("forward", self.swarm_id, str(port))

    def restore(self) -> None:
        """Start the worker's daemon again; it rejoins the swarm."""
        _script("up", self.swarm_id)


def problem() -> str | None:
    """Why a swarm cannot be formed here, or None."""
    if os.geteuid() != 0:
        return "forming the test swarm needs root (network namespaces, dockerd)"
    for tool in ("ip", "nsenter", "unshare", "dockerd", "docker"):
        if shutil.which(tool) is None:
            return f"{tool} is missing (scripts/start-docker.sh installs docker.io)"
    return None


def form(swarm_id: str) -> SwarmCluster:
    output = _script("up", swarm_id)
    values = dict(line.split("=", 1) for line in output.splitlines() if "=" in line)
    return SwarmCluster(
        swarm_id=swarm_id,
        docker_host=values["PIER_SWARM_DOCKER_HOST"],
        worker_host=values["PIER_SWARM_WORKER_HOST"],
        manager_address=values["PIER_SWARM_MANAGER_ADDR"],
        worker_address=values["PIER_SWARM_WORKER_ADDR"],
        manager_name=f"swarm{swarm_id}-manager",
        worker_name=f"swarm{swarm_id}-worker",
    )


def dissolve(swarm_id: str) -> None:
    _script("down", swarm_id)


def _script(command: str, swarm_id: str, *args: str) -> str:
    env = {**os.environ, "PIER_SWARM_ID": swarm_id}
    result = subprocess.run(
        ["bash", str(SCRIPT), command, *args], env=env, capture_output=True, text=True,
        timeout=UP_TIMEOUT_S,
    )  # fmt: skip
    if result.returncode != 0:
        raise SwarmNotFormed(f"scripts/swarm.sh {command} failed:\n{result.stderr[-2000:]}")
    return result.stdout
