"""The route table the control plane publishes and the gateway serves from.

The control plane builds a RouteTable from the store and the controller's view of
instances; gateways fetch it (long poll on ``version``) and keep the last one they saw,
so they go on serving while the control plane is away.
"""

from __future__ import annotations

import re
from typing import Annotated, Final

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from pier.domain.specs import Access

INSTANCE_ID: Final = re.compile(r"[A-Za-z0-9._-]{1,128}", re.ASCII)
"""What the gateway sends in ``x-pier-instance``: a header token, nothing to escape."""
UPSTREAM_URL: Final = re.compile(
    r"http://(?:[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?(?:/[A-Za-z0-9\-._~/]*)?",
    re.ASCII,
)
"""An instance's base URL; its host and path go into the request head as they are."""


def is_routable(instance_id: str, endpoint: str) -> bool:
    """Whether the gateway can put ``instance_id`` and ``endpoint`` on the wire verbatim."""
    return bool(INSTANCE_ID.fullmatch(instance_id) and UPSTREAM_URL.fullmatch(endpoint))


def _matching(pattern: re.Pattern[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"{value[:100]!r} is not a valid {what}")
        return value

    return AfterValidator(check)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class RouteInstance(_Frozen):
    instance_id: Annotated[str, _matching(INSTANCE_ID, "instance id")]
    endpoint: Annotated[str, _matching(UPSTREAM_URL, "upstream URL")]
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
    suspended: bool = False
    """Suspended on request: the gateway answers 503 saying so (and starts nothing), and
    an alias routes around the node."""


class AliasTarget(_Frozen):
    node: str
    weight: int
    """The node's share of the alias's traffic, 0-100 (the alias's shares sum to 100)."""
    ready: bool = True
    """The node is Healthy at its minimum (and not suspended): only ready nodes take the
    alias's traffic; a share of a node that is not ready goes to the ready ones. When no
    node is ready, the nodes with a Healthy instance take it by their shares."""


class AliasMirror(_Frozen):
    node: str
    percent: float = Field(gt=0, le=100)
    """This share of the alias's requests is copied to ``node``; its answers are discarded
    (their status, latency and, for V2 answers, agreement with the primary are counted)."""


class HeaderRoute(_Frozen):
    header: str
    """Lower-case header name."""
    value: str
    node: str
    """Requests carrying ``header: value`` go to this node whatever the shares."""


class AliasRoute(_Frozen):
    project: str
    alias: str
    targets: tuple[AliasTarget, ...] = ()
    access: Access = Access.PRIVATE
    mirrors: tuple[AliasMirror, ...] = ()
    sticky_header: str | None = None
    """Lower-case header name: callers with the same value of it keep their instance
    (consistent hashing over the chosen node's instances)."""
    header_routes: tuple[HeaderRoute, ...] = ()


class RouteTable(_Frozen):
    version: int = 0
    nodes: dict[str, NodeRoute] = Field(default_factory=dict)
    """Keyed by "project/node"."""
    aliases: dict[str, AliasRoute] = Field(default_factory=dict)
    """Keyed by "project/alias"."""
    token_sha256: frozenset[str] = frozenset()
    """SHA-256 hex digests of the installation admins' tokens: they may call every private
    route, and see the gateway's figures of every node."""
    project_tokens: dict[str, dict[str, float | None]] = Field(default_factory=dict)
    """Project -> SHA-256 hex digest -> expiry (Unix time; None: never) of the other tokens
    allowed to call that project's private routes (its callers, editors and admins). The
    gateway checks the expiry by its own clock, so it holds while the control plane is away."""


class RouteChanges(_Frozen):
    """What changed from the route table of version ``base`` to the one of ``version``:
    the node routes that are new or differ, the keys of those that went, and the rest
    whole (aliases and tokens are few). A gateway applies it on the table it serves
    when that is ``base``; with hundreds of nodes, a change of one is one route sent."""

    base: int
    version: int
    nodes: dict[str, NodeRoute] = Field(default_factory=dict)
    """The node routes added or changed since ``base``, keyed by "project/node"."""
    removed: tuple[str, ...] = ()
    """The keys of the node routes gone since ``base``."""
    aliases: dict[str, AliasRoute] = Field(default_factory=dict)
    token_sha256: frozenset[str] = frozenset()
    project_tokens: dict[str, dict[str, float | None]] = Field(default_factory=dict)

    @classmethod
    def between(cls, old: RouteTable, new: RouteTable) -> RouteChanges:
        return cls(
            base=old.version, version=new.version,
            nodes={k: r for k, r in new.nodes.items() if old.nodes.get(k) != r},
            removed=tuple(sorted(old.nodes.keys() - new.nodes.keys())),
            aliases=new.aliases, token_sha256=new.token_sha256,
            project_tokens=new.project_tokens,
        )  # fmt: skip

    def applied_to(self, table: RouteTable) -> RouteTable:
        """``table`` (of version ``base``) with these changes: the table of ``version``."""
        nodes = {k: r for k, r in table.nodes.items() if k not in self.removed}
        nodes.update(self.nodes)
        return RouteTable(
            version=self.version, nodes=nodes, aliases=self.aliases,
            token_sha256=self.token_sha256, project_tokens=self.project_tokens,
        )  # fmt: skip
