"""The route table compiled for the hot path, and how a request finds its node.

A ``RouteTable`` from the control plane becomes a ``Router``: dictionaries keyed by
``b"project/name"`` (the bytes httptools hands over, so a lookup needs no decoding),
nodes holding their ``Upstream`` objects, aliases holding a weighted choice over the
nodes that can take traffic. A new table builds a new Router; requests in flight keep
the one they started with.

``match_request`` finds where a request goes (the key and the target path), in order:
  * a header ``x-node-id: NODE`` or ``x-node-alias: ALIAS`` (project from ``x-folder-id``
    or ``x-pier-project``, default ``default``; DataSphere's ``datasphere.user.ALIAS``
    is ALIAS): the path is forwarded unchanged (DataSphere-compatible);
  * ``/{project}/nodes/{node}/{path}`` and ``/{project}/aliases/{alias}/{path}``:
    ``/{path}`` is forwarded, the query string kept.

``Router.resolve`` then finds the node or alias of the key, or the error for an unknown
or a suspended one (a suspended node is no target at all, so an alias routes around
it): the client connection calls it when the head is parsed, and a request waiting for
instances calls it again when the routes change.

An alias picks its node per request (``AliasRequest``): a header route's node if the
request carries that header value; else by weight among the ready nodes with a Healthy
instance (a node not yet Healthy at its minimum, or suspended, gets none of the share),
or, when none is ready, among the nodes with a Healthy instance. With a sticky header
the session's hash picks the node (by weight) and the instance (on the node's hash
ring, ``balance``). Every answer through an alias names its node (``x-pier-node``), and
the request is counted per (alias, node) in ``AliasStats``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final, TypeAlias

import structlog

from pier.domain.errors import AliasNotFound, NodeNotFound, PierError
from pier.domain.routes import AliasRoute, NodeRoute, RouteInstance, RouteTable
from pier.domain.specs import Access
from pier.domain.tokens import token_digest
from pier.gateway.balance import HashRing, WeightedChoice, session_hash
from pier.gateway.errors import NodeSuspended, split_key
from pier.gateway.limits import body_limit
from pier.gateway.metrics import AliasStats, GatewayMetrics, MirrorStats, NodeStats
from pier.gateway.pool import IDLE_S, Upstream, UpstreamRegistry

log = structlog.get_logger("pier.gateway")

DEFAULT_PROJECT: Final = b"default"
DATASPHERE_ALIAS_PREFIX: Final = b"datasphere.user."
"""DataSphere names a user's alias ``datasphere.user.NAME`` in ``x-node-alias``."""
_TOKEN_CACHE_SIZE: Final = 1024
_HALF_RANGE: Final = float(2**64)
"""A session hash is 128 bits: the upper half picks the node, the lower the instance."""
_REPINNED: Final = b"x-pier-repinned: 1\r\n"


@dataclass(slots=True, eq=False)
class NodeTarget:
    """A node as the gateway serves it."""

    project: str
    node: str
    instances: tuple[Upstream, ...]
    """Healthy instances, the ones in load balancing."""
    timeout_s: float
    is_public: bool
    max_body_bytes: int
    stats: NodeStats
    scales_from_zero: bool = False
    ring: HashRing[Upstream] | None = None
    """The instances on a hash ring, for sticky sessions (built for sticky aliases)."""


@dataclass(slots=True, eq=False)
class AliasNode:
    """A node as one alias serves it: where its requests go, its figures there, and the
    header naming it in every answer through the alias."""

    node: NodeTarget
    stats: AliasStats
    header: bytes
    """The ``x-pier-node`` header line."""


@dataclass(slots=True, eq=False)
class MirrorTarget:
    """A node that gets a copy of ``fraction`` of an alias's requests."""

    node: NodeTarget
    fraction: float
    stats: MirrorStats


@dataclass(slots=True, eq=False)
class AliasTarget:
    """An alias: a weighted choice over its nodes that can take traffic, header routes,
    sticky sessions and mirrors."""

    project: str
    alias: str
    is_public: bool
    choice: WeightedChoice[AliasNode] | None
    """Ready nodes with a weight and a Healthy instance; when there are none, the nodes
    with a weight and a Healthy instance; None when no node of the alias has one."""
    fallback: AliasNode | None
    """A node of the alias for limits and errors while ``choice`` is None."""
    by_name: dict[str, AliasNode] = field(default_factory=dict)
    """Every node the alias may send to (targets and header routes), by name."""
    header_routes: tuple[tuple[bytes, bytes, str], ...] = ()
    """(lower-case header name, value, node): requests carrying it go to that node."""
    sticky_header: bytes | None = None
    mirrors: tuple[MirrorTarget, ...] = ()
    reads_headers: bool = field(init=False)
    """Whether the alias routes by a request header (header routes, sticky)."""

    def __post_init__(self) -> None:
        self.reads_headers = bool(self.header_routes) or self.sticky_header is not None

    def read_headers(self, headers: list[bytes]) -> tuple[str | None, int]:
        """(the node a header route names, the sticky session's hash or -1) of a request
        whose forwarded headers are ``headers`` (name and value at 1 and 3 of each four)."""
        routed: str | None = None
        session = -1
        sticky = self.sticky_header
        for index in range(1, len(headers) - 2, 4):
            name = headers[index].lower()
            value = headers[index + 2]
            if name == sticky and session < 0:
                session = session_hash(value.strip())
            if routed is None:
                for header, wanted, node in self.header_routes:
                    if name == header and value.strip() == wanted:
                        routed = node
                        break
        return routed, session

    def pick(self, routed: str | None = None, session: int = -1) -> AliasNode | None:
        """The node to take the next request: the one a header route names, else one
        by weight (the same one for the same session while the shares stay); None if no
        node can take it."""
        if routed is not None:
            leg = self.by_name.get(routed)
            if leg is not None:
                return leg
        choice = self.choice
        if choice is None:
            return self.fallback
        if session >= 0:
            return choice.pick_at((session >> 64) / _HALF_RANGE)
        return choice.pick()


class AliasRequest:
    """What one request through an alias carries besides its node: how it was routed,
    its sticky session, the copies it is to be mirrored to."""

    __slots__ = (
        "has_chosen_mirrors",
        "is_repinned",
        "leg",
        "mirrors",
        "node",
        "routed",
        "session",
        "started_at",
        "target",
    )

    def __init__(self, target: AliasTarget, routed: str | None, session: int) -> None:
        self.target = target
        self.routed = routed
        self.session = session
        choice = target.choice
        if routed is None and session < 0 and choice is not None:  # most requests
            leg: AliasNode | None = choice.pick()
        else:
            leg = target.pick(routed, session)
        self.leg = leg
        self.node = leg.node if leg is not None else None
        self.is_repinned = False
        self.started_at = 0.0
        """Loop time of the gateway's first try (0.0: not tried yet)."""
        self.mirrors: list[MirrorTarget] | None = None
        """The mirrors this request is copied to, once chosen (and not yet queued)."""
        self.has_chosen_mirrors = False

    def repick(self, target: AliasTarget) -> NodeTarget | None:
        """Pick again in ``target`` (the alias in a newer route table)."""
        self.target = target
        leg = self.leg = target.pick(self.routed, self.session)
        node = self.node = leg.node if leg is not None else None
        return node

    def header_lines(self, request_id: bytes) -> bytes:
        """The header lines the gateway adds to the answer: ``request_id``, the node's,
        and ``x-pier-repinned`` when a sticky session moved."""
        leg = self.leg
        lines = request_id if leg is None else request_id + leg.header
        return lines + _REPINNED if self.is_repinned else lines


_TokenGrant: TypeAlias = tuple[bool, dict[str, float | None]]
"""What one token may call: (installation admin, project -> expiry)."""
_UNSEEN: Final[_TokenGrant] = (False, {})

RouteMatch: TypeAlias = tuple[bool, bytes, bytes]
"""Where a request goes before the node is resolved: (is_alias, b"project/name", target),
target being the path and query to send to the instance. A plain tuple: it is made per
request."""


class Router:
    """One compiled route table version."""

    def __init__(
        self,
        table: RouteTable,
        *,
        upstreams: UpstreamRegistry,
        metrics: GatewayMetrics,
        default_max_body_bytes: int,
    ) -> None:
        self.version = table.version
        self.table = table
        self._metrics = metrics
        self._admins = table.token_sha256
        self._grants = _grants_by_token(table.project_tokens)
        self._token_cache: dict[bytes, _TokenGrant | None] = {}
        self.nodes: dict[bytes, NodeTarget] = {
            _key(r.project, r.node): _compile_node(r, upstreams, metrics, default_max_body_bytes)
            for r in table.nodes.values()
            if not r.suspended
        }
        self.suspended: dict[bytes, bool] = {
            _key(r.project, r.node): r.access == Access.PUBLIC
            for r in table.nodes.values()
            if r.suspended
        }
        """Keys of the suspended nodes, and whether each is public."""
        self.aliases: dict[bytes, AliasTarget] = {
            _key(a.project, a.alias): self._compile_alias(a) for a in table.aliases.values()
        }
        self.public_nodes = frozenset(
            (r.project, r.node) for r in table.nodes.values() if r.access == Access.PUBLIC
        )
        """(project, node) of the public nodes: what callers without a token may see."""
        self.public_aliases = frozenset(
            (a.project, a.alias) for a in table.aliases.values() if a.access == Access.PUBLIC
        )
        """(project, alias) of the public aliases."""

    def resolve(self, is_alias: bool, key: bytes) -> NodeTarget | AliasTarget | PierError:
        """The node or alias of ``key`` (``b"project/name"``), or the error that says it
        is unknown (a node's names the project's nodes, for a suggestion)."""
        if is_alias:
            alias = self.aliases.get(key)
            return alias if alias is not None else AliasNotFound(*split_key(key))
        node = self.nodes.get(key)
        if node is not None:
            return node
        project, name = split_key(key)
        is_public = self.suspended.get(key)
        if is_public is not None:
            return NodeSuspended(project, name, is_public=is_public)
        return NodeNotFound(project, name, known=self.node_names(project))

    @property
    def upstreams(self) -> Iterable[Upstream]:
        for node in self.nodes.values():
            yield from node.instances

    def routed_instances(self, *, public_only: bool) -> Iterator[tuple[str, str, Upstream]]:
        """(project, node, instance) of every instance in the routes (of public nodes
        only, with ``public_only``): whose request counts ``/metrics`` shows."""
        for node in self.nodes.values():
            if node.is_public or not public_only:
                for upstream in node.instances:
                    yield node.project, node.node, upstream

    def node_names(self, project: str) -> list[str]:
        """The names of the project's nodes (to suggest one for a typo)."""
        return [r.node for r in self.table.nodes.values() if r.project == project]

    def is_authorized(self, authorization: bytes | None) -> bool:
        """True if ``authorization`` is ``Bearer T`` with sha256(T) an installation admin's."""
        grant = self._grant(authorization)
        return grant is not None and grant[0]

    def may_call(self, authorization: bytes | None, project: str) -> bool:
        """True if ``authorization`` carries a token allowed to call ``project``'s private
        routes now: an installation admin's, or one of the project's not yet expired (by
        this gateway's clock)."""
        grant = self._grant(authorization)
        if grant is None:
            return False
        is_admin, projects = grant
        if is_admin:
            return True
        if project not in projects:
            return False
        expires = projects[project]
        return expires is None or time.time() < expires

    def _grant(self, authorization: bytes | None) -> _TokenGrant | None:
        """What the bearer token may call, hashed once per token per table (a bounded cache)."""
        if authorization is None or authorization[:7].lower() != b"bearer ":
            return None
        token = authorization[7:].strip()
        grant: _TokenGrant | None = self._token_cache.get(token, _UNSEEN)
        if grant is _UNSEEN:
            digest = token_digest(token)
            grant = (True, {}) if digest in self._admins else self._grants.get(digest)
            if len(self._token_cache) >= _TOKEN_CACHE_SIZE:
                self._token_cache.clear()
            self._token_cache[token] = grant
        return grant

    def _compile_alias(self, route: AliasRoute) -> AliasTarget:
        by_name: dict[str, AliasNode] = {}
        for name in (*(t.node for t in route.targets), *(r.node for r in route.header_routes)):
            node = self.nodes.get(_key(route.project, name))
            if node is not None and name not in by_name:
                stats = self._metrics.alias(route.project, route.alias, name)
                by_name[name] = AliasNode(node, stats, b"x-pier-node: %s\r\n" % name.encode())
        weighted = [(by_name[t.node], t) for t in route.targets if t.node in by_name]
        live = [(leg, t) for leg, t in weighted if t.weight > 0 and leg.node.instances]
        ready = [(leg, t) for leg, t in live if t.ready]
        chosen = ready or live
        fallback = next((leg for leg, t in weighted if t.weight > 0), None)
        if route.sticky_header is not None:
            for leg in by_name.values():
                leg.node.ring = leg.node.ring or HashRing(leg.node.instances)
        return AliasTarget(
            project=route.project,
            alias=route.alias,
            is_public=route.access == Access.PUBLIC,
            choice=WeightedChoice([leg for leg, _ in chosen], [t.weight for _, t in chosen])
            if chosen
            else None,
            fallback=fallback or next(iter(by_name.values()), None),
            by_name=by_name,
            header_routes=tuple(
                (r.header.lower().encode("latin-1"), r.value.encode("latin-1"), r.node)
                for r in route.header_routes
            ),
            sticky_header=route.sticky_header.lower().encode("latin-1")
            if route.sticky_header
            else None,
            mirrors=tuple(self._compile_mirrors(route)),
        )

    def _compile_mirrors(self, route: AliasRoute) -> Iterator[MirrorTarget]:
        for mirror in route.mirrors:
            node = self.nodes.get(_key(route.project, mirror.node))
            if node is not None:
                stats = self._metrics.mirror(route.project, route.alias, mirror.node)
                yield MirrorTarget(node, mirror.percent / 100.0, stats)


def match_request(
    url: bytes, node: bytes | None, alias: bytes | None, project: bytes | None
) -> RouteMatch | None:
    """Where a request goes: by its routing headers if it has any, else by its path."""
    if node is not None or alias is not None:
        return match_headers(url, node, alias, project)
    return match_path(url)


def match_path(url: bytes) -> RouteMatch | None:
    """``/{project}/(nodes|aliases)/{name}/{path}?q`` -> its key and ``/{path}?q``."""
    parts = url.split(b"/", 4)
    if len(parts) == 5:
        empty, project, kind, name, rest = parts
        target = b"/" + rest
        query_at = name.find(b"?")
        if query_at >= 0:  # a query with a slash in it: /p/nodes/n?x=a/b
            name, target = name[:query_at], b"/" + url[url.find(b"?") :]
    elif len(parts) == 4:
        empty, project, kind, name = parts
        query_at = name.find(b"?")
        if query_at >= 0:
            name, target = name[:query_at], b"/" + name[query_at:]
        else:
            target = b"/"
    else:
        return None
    if empty or not project or not name or (kind != b"nodes" and kind != b"aliases"):
        return None
    return (kind == b"aliases", b"%s/%s" % (project, name), target)


def match_headers(
    url: bytes, node: bytes | None, alias: bytes | None, project: bytes | None
) -> RouteMatch | None:
    """DataSphere-style routing by ``x-node-id`` / ``x-node-alias``; the path is unchanged."""
    prefix = (project or DEFAULT_PROJECT) + b"/"
    if node is not None:
        return (False, prefix + node.strip(), url)
    if alias is not None:
        alias = alias.strip()
        if alias.startswith(DATASPHERE_ALIAS_PREFIX):
            alias = alias[len(DATASPHERE_ALIAS_PREFIX) :]
        return (True, prefix + alias, url)
    return None


def _grants_by_token(
    project_tokens: dict[str, dict[str, float | None]],
) -> dict[str, _TokenGrant]:
    """The table's project -> digest -> expiry, turned round: digest -> its projects."""
    grants: dict[str, _TokenGrant] = {}
    for project, tokens in project_tokens.items():
        for digest, expires in tokens.items():
            grants.setdefault(digest, (False, {}))[1][project] = expires
    return grants


def _key(project: str, name: str) -> bytes:
    return f"{project}/{name}".encode()


def _upstream(upstreams: UpstreamRegistry, instance: RouteInstance) -> Upstream | None:
    try:
        return upstreams.get(instance)
    except ValueError as e:  # one bad endpoint must not keep the rest of the table out
        log.warning("instance skipped", instance=instance.instance_id, error=str(e))
        return None


def _compile_node(
    route: NodeRoute, upstreams: UpstreamRegistry, metrics: GatewayMetrics, default_limit: int
) -> NodeTarget:
    instances = tuple(u for i in route.instances if (u := _upstream(upstreams, i)) is not None)
    for upstream in instances:
        upstream.keep_idle_for(route.idle_timeout_s or IDLE_S)
    return NodeTarget(
        project=route.project,
        node=route.node,
        instances=instances,
        timeout_s=route.timeout_s,
        is_public=route.access == Access.PUBLIC,
        max_body_bytes=body_limit(route.max_body_bytes, default_limit),
        stats=metrics.node(route.project, route.node),
        scales_from_zero=route.scales_from_zero,
    )
