"""The state file of a local instance (``<state_dir>/<instance_id>.json``): what pier needs
to adopt the instance after it restarts."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from pier.domain.names import InstanceId, NodeKey, NodeName, ProjectName

STATE_FORMAT: Final = 1
"""Version of the state file layout, stored in each file."""
HOST: Final = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class InstanceState:
    """The state file of one instance: what survives a restart of pier."""

    instance_id: InstanceId
    node: NodeKey
    generation: int
    pid: int
    create_time: float
    port: int
    extra_ports: Mapping[int, int] = field(default_factory=dict)
    """The spec's extra ports (``{port:N}`` in its command) -> the ports they were given."""
    limits_applied: tuple[str, ...] = ()
    limits_not_applied: tuple[str, ...] = ()

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def port_endpoints(self) -> dict[int, str]:
        return {extra: f"http://{HOST}:{port}" for extra, port in self.extra_ports.items()}

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": STATE_FORMAT,
                "instance_id": self.instance_id,
                "project": self.node.project,
                "node": self.node.node,
                "generation": self.generation,
                "pid": self.pid,
                "create_time": self.create_time,
                "port": self.port,
                "endpoint": self.endpoint,
                "extra_ports": {str(extra): port for extra, port in self.extra_ports.items()},
                "limits_applied": list(self.limits_applied),
                "limits_not_applied": list(self.limits_not_applied),
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> InstanceState:
        data: dict[str, Any] = json.loads(text)
        return cls(
            instance_id=InstanceId(data["instance_id"]),
            node=NodeKey(ProjectName(data["project"]), NodeName(data["node"])),
            generation=int(data["generation"]),
            pid=int(data["pid"]),
            create_time=float(data["create_time"]),
            port=int(data["port"]),
            extra_ports={int(k): int(v) for k, v in data.get("extra_ports", {}).items()},
            limits_applied=tuple(data.get("limits_applied", ())),
            limits_not_applied=tuple(data.get("limits_not_applied", ())),
        )
