"""The controller's in-memory view of one instance, and its persistence as a store row.

pier's opinion of the instance (status, since, restarts, last error) is a frozen
InstanceView, moved only by the transition table (``InstanceView.moved_to``) and replaced
as a whole. What the runtime reports is a frozen RuntimeFacts, replaced as a whole by
``observe()``; the probe and the removal change only through the methods below."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from pier.controller.backoff import Backoff
from pier.controller.observe import ProbeWindow
from pier.controller.plan import PlannedInstance
from pier.controller.probes import Probe
from pier.domain.instance_status import InstanceStatus, InstanceView
from pier.domain.names import InstanceId, NodeKey
from pier.domain.records import InstanceRecord
from pier.runtimes.base import Observed


@dataclass(frozen=True, slots=True)
class RuntimeFacts:
    """What the runtime last reported of the instance: replaced as a whole."""

    endpoint: str | None = None
    port_endpoints: Mapping[int, str] = field(default_factory=dict)
    exited: bool = False
    exit_code: int | None = None
    limits_applied: tuple[str, ...] = ()
    limits_not_applied: tuple[str, ...] = ()
    pid: int | None = None
    container_id: str | None = None
    exit_reason: str | None = None
    """The runtime's words on why it exited (its machine was lost), beside the exit code."""

    def after(self, seen: Observed) -> RuntimeFacts:
        """The facts once ``seen`` is reported; an endpoint or handle it does not repeat
        is kept (a runtime reports some only once)."""
        return RuntimeFacts(
            endpoint=seen.endpoint or self.endpoint, port_endpoints=dict(seen.port_endpoints),
            exited=seen.phase == "exited", exit_code=seen.exit_code,
            limits_applied=seen.limits_applied, limits_not_applied=seen.limits_not_applied,
            pid=seen.pid or self.pid, container_id=seen.container_id or self.container_id,
            exit_reason=seen.exit_reason,
        )  # fmt: skip


@dataclass(slots=True)
class TrackedInstance:
    instance_id: InstanceId
    key: NodeKey
    runtime: str
    generation: int
    created_at: float
    view: InstanceView
    facts: RuntimeFacts = field(default_factory=RuntimeFacts)
    probe: Probe | None = field(default=None, repr=False)
    removal_reason: str | None = None
    """Why it is being deleted, once it is (told in the instance_deleted event)."""
    removal_backoff: Backoff | None = field(default=None, repr=False)
    """Set once a removal failed: when the controller tries again."""

    # facts of the runtime

    def observe(self, seen: Observed) -> bool:
        """Take what the runtime reports now; whether its handle (pid, container) changed."""
        before, self.facts = self.facts, self.facts.after(seen)
        return (before.pid, before.container_id) != (self.pid, self.container_id)

    def vanish(self) -> None:
        """The runtime no longer reports it: removed behind pier's back."""
        self.facts = replace(self.facts, exited=True)

    @property
    def endpoint(self) -> str | None:
        return self.facts.endpoint

    @property
    def port_endpoints(self) -> Mapping[int, str]:
        return self.facts.port_endpoints

    @property
    def exited(self) -> bool:
        return self.facts.exited

    @property
    def exit_code(self) -> int | None:
        return self.facts.exit_code

    @property
    def pid(self) -> int | None:
        return self.facts.pid

    @property
    def container_id(self) -> str | None:
        return self.facts.container_id

    # its probe and its removal

    def start_probe(self, probe: Probe) -> None:
        """Probe its health from now on (one probe per instance)."""
        if self.probe is None:
            self.probe = probe
            probe.start()

    async def stop_probe(self) -> None:
        if self.probe is not None:
            probe, self.probe = self.probe, None
            await probe.stop()

    def leave(self, reason: str | None) -> None:
        """It is being removed; the first reason given is the one told."""
        self.removal_reason = self.removal_reason or reason

    def removal_failed(
        self, exc: BaseException, *, base_s: float, max_s: float, now: float
    ) -> float:
        """Its removal failed: the delay before the controller tries again."""
        if self.removal_backoff is None:
            self.removal_backoff = Backoff(base_s, max_s)
        return self.removal_backoff.after(exc, now=now)

    # pier's opinion

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

    def undo(self, view: InstanceView) -> None:
        """Put back the view a move returned (the move could not be stored)."""
        self.view = view

    def show_error(self, error: str | None) -> None:
        """The last probe error it shows (None: it shows none)."""
        self.view = replace(self.view, last_error=error)

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
            runtime=self.runtime, limits_applied=self.facts.limits_applied,
            limits_not_applied=self.facts.limits_not_applied, created_at=_dt(self.created_at),
            port_endpoints=dict(self.port_endpoints), pid=self.pid,
            container_id=self.container_id,
        )  # fmt: skip


def _dt(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)
