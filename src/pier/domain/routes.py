"""The route table the control plane publishes and the gateway serves from.

The control plane builds a RouteTable from the store and the controller's view of
instances; gateways fetch it (long poll on ``version``) and keep the last one they saw,
so they go on serving while the control plane is away.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from pier.domain.specs import Access


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class RouteInstance(_Frozen):
    instance_id: str
    endpoint: str
    """Base URL, e.g. http://127.0.0.1:41235."""


class NodeRoute(_Frozen):
    project: str
    node: str
    instances: tuple[RouteInstance, ...] = ()
    """Healthy instances only: the ones in load balancing."""
    timeout_s: float = 60.0
    idle_timeout_s: float | None = None
    """Pooled connections to an instance idle longer than this are closed (None: 4 s)."""
    access: Access = Access.PRIVATE
    max_body_bytes: int | None = None
    """None: the gateway's default limit."""
    scales_from_zero: bool = False
    """min_instances is 0: a request finding no instance waits up to ``timeout_s`` for one
    to start (its wait is load the autoscaler sees), not just the gateway's short wait."""


class AliasTarget(_Frozen):
    node: str
    weight: int


class AliasRoute(_Frozen):
    project: str
    alias: str
    targets: tuple[AliasTarget, ...] = ()
    access: Access = Access.PRIVATE


class RouteTable(_Frozen):
    version: int = 0
    nodes: dict[str, NodeRoute] = Field(default_factory=dict)
    """Keyed by "project/node"."""
    aliases: dict[str, AliasRoute] = Field(default_factory=dict)
    """Keyed by "project/alias"."""
    token_sha256: frozenset[str] = frozenset()
    """SHA-256 hex digests of the bearer tokens allowed to call private routes."""
