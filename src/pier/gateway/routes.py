"""The route table compiled for the hot path, and how a request finds its node.

A ``RouteTable`` from the control plane becomes a ``Router``: dictionaries keyed by
``b"project/name"`` (the bytes httptools hands over, so a lookup needs no decoding),
nodes holding their ``Upstream`` objects, aliases holding a weighted choice over the
nodes that can take traffic. A new table builds a new Router; requests in flight keep
the one they started with.

``match_request`` finds where a request goes (the key and the target path), in order:
  * a header ``x-node-id: NODE`` or ``x-node-alias: ALIAS`` (project from ``x-folder-id``
    or ``x-pier-project``, default ``default``): the path is forwarded unchanged
    (DataSphere-compatible);
  * ``/{project}/nodes/{node}/{path}`` and ``/{project}/aliases/{alias}/{path}``:
    ``/{path}`` is forwarded, the query string kept.

``Router.resolve`` then finds the node or alias of the key, or the error for an unknown
or a suspended one (a suspended node is no target at all, so an alias routes around
it): the client connection calls it when the head is parsed, and a request waiting for
instances calls it again when the routes change.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, TypeAlias

import structlog

from pier.domain.errors import AliasNotFound, NodeNotFound, PierError
from pier.domain.routes import AliasRoute, NodeRoute, RouteInstance, RouteTable
from pier.domain.specs import Access
from pier.domain.tokens import token_digest
from pier.gateway.balance import WeightedChoice
from pier.gateway.errors import NodeSuspended, split_key
from pier.gateway.limits import body_limit
from pier.gateway.metrics import GatewayMetrics, NodeStats
from pier.gateway.pool import IDLE_S, Upstream, UpstreamRegistry

log = structlog.get_logger("pier.gateway")

DEFAULT_PROJECT: Final = b"default"
_TOKEN_CACHE_SIZE: Final = 1024


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

    def pick(self) -> NodeTarget:
        """The node takes the request itself (as an alias picks one of its nodes)."""
        return self


@dataclass(slots=True, eq=False)
class AliasTarget:
    """An alias: a weighted choice over its nodes that have Healthy instances."""

    project: str
    alias: str
    is_public: bool
    choice: WeightedChoice[NodeTarget] | None
    """None when no node of the alias can take traffic now."""
    fallback: NodeTarget | None
    """A node of the alias for limits and errors while ``choice`` is None."""

    def pick(self) -> NodeTarget | None:
        """The node to take the next request, by weight; None if none can."""
        if self.choice is not None:
            return self.choice.pick()
        return self.fallback


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
        self._tokens = table.token_sha256
        self._token_cache: dict[bytes, bool] = {}
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

    def node_names(self, project: str) -> list[str]:
        """The names of the project's nodes (to suggest one for a typo)."""
        return [r.node for r in self.table.nodes.values() if r.project == project]

    def is_authorized(self, authorization: bytes | None) -> bool:
        """True if ``authorization`` is ``Bearer T`` with sha256(T) among the table's tokens."""
        if authorization is None or authorization[:7].lower() != b"bearer ":
            return False
        token = authorization[7:].strip()
        known = self._token_cache.get(token)
        if known is None:
            known = token_digest(token) in self._tokens
            if len(self._token_cache) >= _TOKEN_CACHE_SIZE:
                self._token_cache.clear()
            self._token_cache[token] = known
        return known

    def _compile_alias(self, route: AliasRoute) -> AliasTarget:
        ready: list[NodeTarget] = []
        weights: list[int] = []
        fallback: NodeTarget | None = None
        for target in route.targets:
            node = self.nodes.get(_key(route.project, target.node))
            if node is None:
                continue
            fallback = fallback or node
            if target.weight > 0 and node.instances:
                ready.append(node)
                weights.append(target.weight)
        return AliasTarget(
            project=route.project,
            alias=route.alias,
            is_public=route.access == Access.PUBLIC,
            choice=WeightedChoice(ready, weights) if ready else None,
            fallback=fallback,
        )


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
        return (True, prefix + alias.strip(), url)
    return None


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
