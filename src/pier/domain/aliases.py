"""AliasSpec: a published endpoint over weighted nodes, and the rules of its shares.

An alias's nodes each take a share of its traffic: integers from 0 to 100 summing to
100. One node may be given without a share and takes what the others leave (alone, that
is 100). Only nodes that are ready (Healthy at their minimum) take traffic; the share
of a node that is not ready goes to the ready ones in proportion to their shares
(``effective_shares``), which is what the gateway does with the route table.

Whether a named node exists is the service's check (it needs the store); everything
else is checked here, and every error names its field by dotted path (``nodes.1.share``).
"""

from __future__ import annotations

import re
from collections.abc import Container, Mapping, Sequence
from typing import Annotated, Any, Final

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pier.domain.names import NAME_PATTERN
from pier.domain.routes import AliasMirror, AliasRoute, AliasTarget, HeaderRoute
from pier.domain.spec_values import FieldError, text_problem
from pier.domain.specs import Access, invalid_spec_from

MAX_ALIAS_NODES: Final = 16
"""Nodes one alias spreads its traffic over."""
MAX_ALIAS_MIRRORS: Final = 4
MAX_HEADER_ROUTES: Final = 32
MAX_METADATA_ENTRIES: Final = 64
MAX_METADATA_KEY_CHARS: Final = 63
MAX_METADATA_VALUE_CHARS: Final = 1024
MAX_HEADER_VALUE_CHARS: Final = 256
TOTAL_SHARE: Final = 100

HEADER_NAME: Final = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}", re.ASCII)
"""An HTTP header name (RFC 9110 token), at most 64 characters."""
HEADER_VALUE: Final = re.compile(r"[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?", re.ASCII)
"""Visible ASCII, inner spaces allowed: what a header value can carry as it is."""
METADATA_KEY: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-/]*", re.ASCII)
NAME_RULE: Final = (
    "is not a valid name: use 1-63 lowercase letters, digits and '-', starting and ending "
    "with a letter or digit"
)


def _node_name(value: str) -> str:
    if not NAME_PATTERN.match(value):
        raise ValueError(f"{value[:100]!r} {NAME_RULE}")
    return value


NodeRef = Annotated[str, AfterValidator(_node_name)]
"""A node's name."""


class _Spec(BaseModel):
    model_config = ConfigDict(
        extra="forbid", use_attribute_docstrings=True, allow_inf_nan=False, frozen=True
    )


class AliasShare(_Spec):
    """One node of an alias and its share of the traffic."""

    node: NodeRef
    """A node of the alias's project."""
    share: Annotated[int, Field(ge=0, le=TOTAL_SHARE)] = TOTAL_SHARE
    """Percent of the alias's requests (0-100; the shares sum to 100). Left out: what the
    other nodes leave (100 for a node alone)."""


class AliasMirrorSpec(_Spec):
    """A copy of a share of the alias's requests, sent to another node."""

    node: NodeRef
    """The node that gets the copies; its answers are discarded and measured."""
    percent: Annotated[float, Field(gt=0, le=100)]
    """Percent of the alias's requests copied to ``node``."""


class HeaderRouteSpec(_Spec):
    """Requests carrying ``header: value`` go to ``node`` whatever the shares."""

    header: str
    """Header name (matched case-insensitively; stored lower-case)."""
    value: Annotated[str, Field(max_length=MAX_HEADER_VALUE_CHARS)]
    """The exact value that selects the node."""
    node: NodeRef
    """A node of the alias's project (it need not have a share)."""

    @field_validator("header")
    @classmethod
    def _header(cls, value: str) -> str:
        return header_name(value)

    @field_validator("value")
    @classmethod
    def _value(cls, value: str) -> str:
        if not HEADER_VALUE.fullmatch(value):
            raise ValueError("a header value is visible ASCII (inner spaces allowed)")
        return value


def header_name(value: str) -> str:
    """``value`` lower-cased if it is an HTTP header name."""
    if not HEADER_NAME.fullmatch(value):
        raise ValueError(
            f"{value[:100]!r} is not a header name: use 1-64 letters, digits and !#$%&'*+.^_`|~-"
        )
    return value.lower()


class AliasSpec(_Spec):
    """What an alias is: its nodes with their shares, mirrors, sticky sessions, header
    routes, metadata and access."""

    nodes: Annotated[tuple[AliasShare, ...], Field(min_length=1, max_length=MAX_ALIAS_NODES)]
    """The nodes that take the alias's traffic, each with its share (summing to 100)."""
    mirrors: Annotated[tuple[AliasMirrorSpec, ...], Field(max_length=MAX_ALIAS_MIRRORS)] = ()
    """Nodes that get a copy of a share of the requests (answers discarded, measured)."""
    sticky_header: str | None = None
    """Callers with the same value of this header keep their instance (stored lower-case)."""
    header_routes: Annotated[tuple[HeaderRouteSpec, ...], Field(max_length=MAX_HEADER_ROUTES)] = ()
    """Requests with a given header value go to a given node whatever the shares."""
    metadata: dict[str, str] = Field(default_factory=dict)
    """Free key-value labels (owner, ticket...); pier does not read them."""
    access: Access = Access.PRIVATE
    """private: callers need a bearer token; public: anyone may call the alias."""

    @model_validator(mode="before")
    @classmethod
    def _rest_to_the_unshared(cls, data: Any) -> Any:
        """A node given without a share takes what the others leave."""
        if not isinstance(data, Mapping) or not isinstance(data.get("nodes"), Sequence):
            return data
        items = [_as_dict(item) for item in data["nodes"]]
        names = [item.get("node") for item in items if item is not None]
        if any(item is None for item in items) or len(set(map(str, names))) < len(names):
            return data  # the field checks say what is wrong
        open_ = [
            i for i, item in enumerate(items) if item is not None and item.get("share") is None
        ]
        if not open_:
            return data
        if len(open_) > 1:
            raise FieldError(
                f"nodes.{open_[1]}.share", "give a share to every node but one at most"
            )
        given = sum(
            item["share"] for item in items if item is not None and _an_int(item.get("share"))
        )
        nodes = [dict(item or {}) for item in items]
        nodes[open_[0]]["share"] = max(TOTAL_SHARE - given, 0) if given <= TOTAL_SHARE else 0
        return {**data, "nodes": nodes}

    @field_validator("sticky_header")
    @classmethod
    def _sticky(cls, value: str | None) -> str | None:
        return None if value is None else header_name(value)

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, str]) -> dict[str, str]:
        check_metadata(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> AliasSpec:
        _no_repeats("nodes", [share.node for share in self.nodes])
        _no_repeats("mirrors", [mirror.node for mirror in self.mirrors])
        total = sum(share.share for share in self.nodes)
        if total != TOTAL_SHARE:
            shares = " + ".join(f"{s.node}={s.share}" for s in self.nodes)
            raise FieldError("nodes", f"the shares sum to {total} ({shares}), not 100")
        routes = [(route.header, route.value) for route in self.header_routes]
        for index, route in enumerate(routes):
            if route in routes[:index]:
                raise FieldError(f"header_routes.{index}", f"{route[0]}={route[1]} is routed twice")
        return self

    def node_names(self) -> tuple[str, ...]:
        """Every node the alias uses: shared, mirrored or header-routed, each once."""
        names = [s.node for s in self.nodes]
        names += [m.node for m in self.mirrors] + [r.node for r in self.header_routes]
        return tuple(dict.fromkeys(names))

    def named_nodes(self) -> list[tuple[str, str]]:
        """(field, node) of every node the spec names, for the existence check."""
        return [
            *((f"nodes.{i}.node", s.node) for i, s in enumerate(self.nodes)),
            *((f"mirrors.{i}.node", m.node) for i, m in enumerate(self.mirrors)),
            *((f"header_routes.{i}.node", r.node) for i, r in enumerate(self.header_routes)),
        ]


def _as_dict(item: Any) -> dict[str, Any] | None:
    if isinstance(item, AliasShare):
        return {"node": item.node, "share": item.share}
    return dict(item) if isinstance(item, Mapping) else None


def _an_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _no_repeats(field: str, names: list[str]) -> None:
    for index, name in enumerate(names):
        if name in names[:index]:
            raise FieldError(f"{field}.{index}.node", f"node {name!r} is listed twice")


def check_metadata(value: Mapping[str, str]) -> None:
    """Short keys of label characters, short values a process could print."""
    if len(value) > MAX_METADATA_ENTRIES:
        raise FieldError("metadata", f"at most {MAX_METADATA_ENTRIES} entries")
    for key, item in value.items():
        if len(key) > MAX_METADATA_KEY_CHARS or not METADATA_KEY.fullmatch(key):
            raise FieldError(
                "metadata",
                f"{key[:100]!r} is not a valid metadata key: 1-{MAX_METADATA_KEY_CHARS} "
                "letters, digits, '_', '.', '-' and '/', starting with a letter or digit",
            )
        if len(item) > MAX_METADATA_VALUE_CHARS:
            raise FieldError(f"metadata.{key}", f"over {MAX_METADATA_VALUE_CHARS} characters")
        if (problem := text_problem(item)) is not None:
            raise FieldError(f"metadata.{key}", problem)


def parse_alias_spec(data: Mapping[str, Any]) -> AliasSpec:
    """Validate user input into an AliasSpec, raising InvalidSpec naming the first bad field."""
    try:
        return AliasSpec.model_validate(data)
    except ValidationError as exc:
        raise invalid_spec_from(exc) from None


def effective_shares(
    shares: Sequence[tuple[str, int]], ready: Mapping[str, bool]
) -> dict[str, float]:
    """The percent of requests each node takes now: ready nodes share the whole in
    proportion to their shares; a node that is not ready takes none. With no ready node
    having a share, nobody takes any (the gateway then falls back, see AliasTarget)."""
    taking = {node: share for node, share in shares if share > 0 and ready.get(node, False)}
    total = sum(taking.values())
    return {node: (100.0 * taking[node] / total if node in taking else 0.0) for node, _ in shares}


def alias_route(project: str, name: str, spec: AliasSpec, ready: Container[str]) -> AliasRoute:
    """The alias as the gateway serves it; ``ready``: its nodes that are Healthy at their
    minimum."""
    return AliasRoute(
        project=project,
        alias=name,
        targets=tuple(
            AliasTarget(node=s.node, weight=s.share, ready=s.node in ready) for s in spec.nodes
        ),
        access=spec.access,
        mirrors=tuple(AliasMirror(node=m.node, percent=m.percent) for m in spec.mirrors),
        sticky_header=spec.sticky_header,
        header_routes=tuple(
            HeaderRoute(header=r.header, value=r.value, node=r.node) for r in spec.header_routes
        ),
    )
