"""The controller's in-memory view of one instance, and its persistence as a store row.

pier's opinion of the instance (status, since, restarts, last error) is a frozen
InstanceView, moved only by the transition table (``InstanceView.moved_to``) and replaced
as a whole; the rest are facts the runtime and the probe report."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from pier.controller.backoff import Backoff
from pier.controller.observe import ProbeWindow
from pier.controller.plan import PlannedInstance
from pier.controller.probes import Probe
from pier.domain.instance_status import InstanceStatus, InstanceView
from pier.domain.names import InstanceId, NodeKey
from pier.domain.records import InstanceRecord


@dataclass(slots=True)
class TrackedInstance:
    instance_id: InstanceId
    key: NodeKey
    runtime: str
    generation: int
    created_at: float
    view: InstanceView
    endpoint: str | None = None
    port_endpoints: dict[int, str] = field(default_factory=dict)
    exited: bool = False
    exit_code: int | None = None
    limits_applied: tuple[str, ...] = ()
    limits_not_applied: tuple[str, ...] = ()
    pid: int | None = None
    container_id: str | None = None
    probe: Probe | None = field(default=None, repr=False)
    removal_reason: str | None = None
    """Why it is being deleted, once it is (told in the instance_deleted event)."""
    removal_backoff: Backoff | None = field(default=None, repr=False)
    """Set once a removal failed: when the controller tries again."""

    @property
    def status(self) -> InstanceStatus:
        return self.view.status

    @property
    def since(self) -> float:
        return self.view.since

    @property
    def restarts(self) -> int:
        return self.view.restarts

    @property
    def last_error(self) -> str | None:
        return self.view.last_error

    def move(self, status: InstanceStatus, *, now: float) -> InstanceView:
        """Move to ``status`` (IllegalTransition if the table forbids it); returns the
        view it had, to put back if the move cannot be stored."""
        before, self.view = self.view, self.view.moved_to(status, now=now)
        return before

    @property
    def window(self) -> ProbeWindow:
        return self.probe.window if self.probe else ProbeWindow()

    def planned(self) -> PlannedInstance:
        return PlannedInstance(
            instance_id=self.instance_id, status=self.status, since=self.since,
            created_at=self.created_at, generation=self.generation, exited=self.exited,
        )  # fmt: skip

    def record(self) -> InstanceRecord:
        return InstanceRecord(
            id=self.instance_id, project=self.key.project, node=self.key.node,
            status=self.status, since=_dt(self.since), endpoint=self.endpoint,
            restarts=self.restarts, last_error=self.last_error, generation=self.generation,
            runtime=self.runtime, limits_applied=self.limits_applied,
            limits_not_applied=self.limits_not_applied, created_at=_dt(self.created_at),
            port_endpoints=dict(self.port_endpoints), pid=self.pid,
            container_id=self.container_id,
        )  # fmt: skip


def _dt(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)
