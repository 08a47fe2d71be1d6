"""What pier writes on its containers (names, labels) and reads back from them."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, Final, Literal

from pier.domain.names import InstanceId, NodeKey, NodeName, ProjectName
from pier.runtimes.base import InstanceSpec, Observed
from pier.runtimes.docker.limits import LimitPlan

HOST: Final = "127.0.0.1"
NAME_PREFIX: Final = "pier-"
MANAGED_LABEL: Final = "pier.managed"
INSTALLATION_LABEL: Final = "pier.installation"

Phase = Literal["created", "running", "exited"]


def phase_of(state: str) -> Phase:
    if state == "created":
        return "created"
    if state in ("running", "paused", "restarting"):
        return "running"
    return "exited"  # exited, dead, removing


def container_labels(spec: InstanceSpec, limits: LimitPlan, installation: str) -> dict[str, str]:
    return {
        MANAGED_LABEL: "true",
        INSTALLATION_LABEL: installation,
        "pier.project": spec.node.project,
        "pier.node": spec.node.node,
        "pier.instance": spec.instance_id,
        "pier.generation": str(spec.generation),
        "pier.port": str(spec.port or ""),
        "pier.extra-ports": json.dumps(list(spec.extra_ports)),
        "pier.limits-applied": json.dumps(list(limits.applied)),
        "pier.limits-not-applied": json.dumps(list(limits.not_applied)),
    }


def observed_from_labels(
    labels: Mapping[str, str],
    phase: Phase,
    host_ports: Mapping[int, int],
    exit_code: int | None,
    container_id: str | None = None,
) -> Observed:
    """``host_ports``: published container port -> host port (empty unless running)."""
    port = int(labels.get("pier.port") or 0)
    extra = json.loads(labels.get("pier.extra-ports") or "[]")
    return Observed(
        instance_id=InstanceId(labels["pier.instance"]),
        node=NodeKey(ProjectName(labels["pier.project"]), NodeName(labels["pier.node"])),
        phase=phase,
        endpoint=host_url(host_ports[port]) if port in host_ports else None,
        port_endpoints={int(p): host_url(host_ports[p]) for p in extra if p in host_ports},
        exit_code=exit_code,
        generation=int(labels.get("pier.generation") or 1),
        limits_applied=tuple(json.loads(labels.get("pier.limits-applied") or "[]")),
        limits_not_applied=tuple(json.loads(labels.get("pier.limits-not-applied") or "[]")),
        container_id=container_id,
    )


def observed_from_inspect(info: Mapping[str, Any]) -> Observed:
    labels = info["Config"]["Labels"] or {}
    state = info["State"]
    phase = phase_of(state["Status"])
    host_ports: dict[int, int] = {}
    if phase == "running":
        for key, bindings in (info["NetworkSettings"].get("Ports") or {}).items():
            container_port, _, proto = str(key).partition("/")
            if proto == "tcp" and bindings:
                host_ports[int(container_port)] = int(bindings[0]["HostPort"])
    exit_code = int(state["ExitCode"]) if phase == "exited" else None
    return observed_from_labels(labels, phase, host_ports, exit_code, info.get("Id"))


def host_ports_from_summary(summary: Mapping[str, Any]) -> dict[int, int]:
    return {
        int(mapping["PrivatePort"]): int(mapping["PublicPort"])
        for mapping in summary.get("Ports") or ()
        if mapping.get("PublicPort") and mapping.get("Type", "tcp") == "tcp"
    }


def host_url(host_port: int) -> str:
    return f"http://{HOST}:{host_port}"


def container_name(instance_id: InstanceId) -> str:
    return f"{NAME_PREFIX}{instance_id}"


def split_lines(chunks: Iterator[bytes]) -> Iterator[str]:
    partial_line = b""
    for chunk in chunks:
        *complete, partial_line = (partial_line + chunk).split(b"\n")
        yield from (_decode(line) for line in complete)
    if partial_line:
        yield _decode(partial_line)


def _decode(line: bytes) -> str:
    return line.decode("utf-8", errors="replace").removesuffix("\r")


def memory_in_use(memory: Mapping[str, Any]) -> int:
    """Usage minus reclaimable page cache, as ``docker stats`` shows it."""
    usage = int(memory.get("usage") or 0)
    stats = memory.get("stats") or {}
    inactive = int(stats.get("total_inactive_file", stats.get("inactive_file", 0)) or 0)
    return usage - inactive if inactive < usage else usage
