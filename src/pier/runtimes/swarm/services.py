"""What pier writes on its swarm services and reads back from them and their tasks."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import docker.auth
import docker.types

from pier.domain.names import InstanceId, NodeKey, NodeName, ProjectName
from pier.runtimes.base import InstanceSpec, Observed
from pier.runtimes.docker.containers import Phase, container_labels, container_name
from pier.runtimes.docker.limits import LimitPlan

GPU_KIND: Final = "gpu"
"""The generic resource a machine offers its GPUs as (dockerd ``--node-generic-resource
gpu=...``); pier reserves ``gpus`` of it."""
PENDING_STATES: Final = frozenset(
    {"new", "pending", "assigned", "accepted", "ready", "preparing", "starting"}
)
RUNNING_STATES: Final = frozenset({"running"})
REJECTED_STATE: Final = "rejected"
"""The machine could not make the task's container (no image there, a missing mount)."""


@dataclass(frozen=True, slots=True)
class Machine:
    """One machine of the swarm as its manager sees it."""

    node_id: str
    hostname: str
    address: str
    state: str
    """ready, down, unknown, disconnected."""

    def __str__(self) -> str:
        return f"{self.hostname} ({self.address}, node {self.node_id[:12]})"


def machines_from(nodes: Sequence[Mapping[str, Any]]) -> dict[str, Machine]:
    """The swarm's machines by node id (``docker node ls``)."""
    return {
        node["ID"]: Machine(
            node_id=node["ID"],
            hostname=str((node.get("Description") or {}).get("Hostname") or node["ID"][:12]),
            address=str((node.get("Status") or {}).get("Addr") or ""),
            state=str((node.get("Status") or {}).get("State") or "unknown"),
        )
        for node in nodes
    }


def service_name(instance_id: InstanceId) -> str:
    return container_name(instance_id)


def service_labels(spec: InstanceSpec, limits: LimitPlan, installation: str) -> dict[str, str]:
    """The docker runtime's container labels, on the service and on its containers."""
    return {**container_labels(spec, limits, installation), "pier.runtime": "swarm"}


def resources(limits: LimitPlan, *, reserve: bool) -> docker.types.Resources:
    """TaskTemplate.Resources: the limits, reserved as well (``reserve``) so the scheduler
    places a task only where they fit; GPUs, always reserved, as the ``gpu`` generic
    resource."""
    return docker.types.Resources(
        cpu_limit=limits.nano_cpus, mem_limit=limits.memory_bytes,
        cpu_reservation=limits.nano_cpus if reserve else None,
        mem_reservation=limits.memory_bytes if reserve else None,
        generic_resources={GPU_KIND: limits.gpus} if limits.gpus else None,
    )  # fmt: skip


def endpoint_spec(ports: Sequence[int]) -> dict[str, Any]:
    """dnsrr (no IPVS virtual IP), each port published on the task's machine only, on a
    port the machine picks."""
    published = [{"Protocol": "tcp", "TargetPort": p, "PublishMode": "host"} for p in ports]
    return {"Mode": "dnsrr", "Ports": published}


def latest_task(tasks: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The service's newest task (a replicated service of one replica has one per try)."""
    if not tasks:
        return None
    return max(tasks, key=lambda t: (str(t.get("CreatedAt", "")), t["Version"]["Index"]))


def observed_from_service(
    service: Mapping[str, Any],
    task: Mapping[str, Any] | None,
    machines: Mapping[str, Machine],
) -> Observed:
    """What a service and its newest task say of the instance. A task whose machine is
    down has exited, whatever it last reported: the reason names the machine."""
    labels: Mapping[str, str] = service["Spec"].get("Labels") or {}
    status: Mapping[str, Any] = (task or {}).get("Status") or {}
    state = str(status.get("State") or "new")
    machine = machines.get(str((task or {}).get("NodeID") or ""))
    container: Mapping[str, Any] = status.get("ContainerStatus") or {}
    reason = None
    phase: Phase
    if task is None or state in PENDING_STATES:
        phase = "created"
    elif state in RUNNING_STATES:
        phase = "running"
    else:
        phase = "exited"
        reason = str(status.get("Err") or "") or None
    if machine is not None and machine.state != "ready" and phase != "exited":
        phase, reason = (
            "exited",
            f"its machine {machine} was lost (the swarm says it is {machine.state})",
        )
    host_ports = host_ports_of(status) if phase == "running" and machine is not None else {}
    address = machine.address if machine is not None else ""
    exit_code = None
    if phase == "exited" and container.get("ExitCode") is not None:
        exit_code = int(container["ExitCode"])
    return observed_from(labels, phase, address, host_ports, exit_code, container, reason, machine)


def host_ports_of(status: Mapping[str, Any]) -> dict[int, int]:
    return {
        int(p["TargetPort"]): int(p["PublishedPort"])
        for p in (status.get("PortStatus") or {}).get("Ports") or ()
        if p.get("PublishedPort") and p.get("Protocol", "tcp") == "tcp"
    }


def observed_from(
    labels: Mapping[str, str],
    phase: Phase,
    address: str,
    host_ports: Mapping[int, int],
    exit_code: int | None,
    container: Mapping[str, Any],
    reason: str | None,
    machine: Machine | None,
) -> Observed:
    port = int(labels.get("pier.port") or 0)
    extra = json.loads(labels.get("pier.extra-ports") or "[]")

    def url(container_port: int) -> str:
        return f"http://{address}:{host_ports[container_port]}"

    return Observed(
        instance_id=InstanceId(labels["pier.instance"]),
        node=NodeKey(ProjectName(labels["pier.project"]), NodeName(labels["pier.node"])),
        phase=phase,
        endpoint=url(port) if port in host_ports else None,
        port_endpoints={int(p): url(p) for p in extra if p in host_ports},
        exit_code=exit_code,
        generation=int(labels.get("pier.generation") or 1),
        limits_applied=tuple(json.loads(labels.get("pier.limits-applied") or "[]")),
        limits_not_applied=tuple(json.loads(labels.get("pier.limits-not-applied") or "[]")),
        container_id=str(container.get("ContainerID") or "") or None,
        machine=str(machine) if machine is not None else None,
        exit_reason=reason,
    )


def registry_auth_header(image: str, auth: Mapping[str, str] | None) -> dict[str, str]:
    """The ``X-Registry-Auth`` header that makes the swarm give every machine running a
    task of the service these credentials for its pull (none without credentials)."""
    if not auth:
        return {}
    registry = docker.auth.resolve_repository_name(image)[0]
    return {"X-Registry-Auth": docker.auth.encode_header({"serveraddress": registry, **auth})}


def rejection(task: Mapping[str, Any] | None, machines: Mapping[str, Machine]) -> str | None:
    """Why the task's machine rejected it, in words naming the machine and the image, or
    None when it was not rejected."""
    status: Mapping[str, Any] = (task or {}).get("Status") or {}
    if task is None or status.get("State") != REJECTED_STATE:
        return None
    machine = machines.get(str(task.get("NodeID") or ""))
    image = str(((task.get("Spec") or {}).get("ContainerSpec") or {}).get("Image") or "")
    err = str(status.get("Err") or "rejected")
    where = f"the swarm's machine {machine}" if machine is not None else "a swarm machine"
    return (
        f"{where} could not start a task of {image} ({err}); when its registry needs a "
        "login, give the node a registry secret (--registry-secret)"
    )
