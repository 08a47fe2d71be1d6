"""How a request finds its node: path and header rules, tokens, compiled tables."""

from __future__ import annotations

import hashlib

import pytest

from pier.domain.routes import AliasRoute, AliasTarget, NodeRoute, RouteInstance, RouteTable
from pier.gateway.metrics import GatewayMetrics
from pier.gateway.pool import UpstreamRegistry
from pier.gateway.routes import Router, match_headers, match_path


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (b"/p/nodes/n/v2/infer?x=1", (False, b"p/n", b"/v2/infer?x=1")),
        (b"/p/nodes/n", (False, b"p/n", b"/")),
        (b"/p/nodes/n/", (False, b"p/n", b"/")),
        (b"/p/nodes/n?x=1", (False, b"p/n", b"/?x=1")),
        (b"/p/nodes/n?x=a/b", (False, b"p/n", b"/?x=a/b")),
        (b"/p/aliases/a/predict", (True, b"p/a", b"/predict")),
        (b"/p/other/n/x", None),
        (b"/healthz", None),
        (b"//nodes/n/x", None),
        (b"/p/nodes//x", None),
    ],
)
def test_match_path(url: bytes, expected: tuple[bool, bytes, bytes] | None) -> None:
    assert match_path(url) == expected


def test_match_headers_keeps_the_path_and_defaults_the_project() -> None:
    assert match_headers(b"/v2/x?q", b"n", None, None) == (False, b"default/n", b"/v2/x?q")
    assert match_headers(b"/", None, b"a", b"team") == (True, b"team/a", b"/")
    assert match_headers(b"/", None, None, b"team") is None


def test_an_alias_header_may_have_datasphere_s_prefix() -> None:
    assert match_headers(b"/x", None, b" datasphere.user.prod", b"f1") == (True, b"f1/prod", b"/x")


def _router(table: RouteTable) -> Router:
    return Router(
        table, upstreams=UpstreamRegistry(), metrics=GatewayMetrics(), default_max_body_bytes=99
    )


def test_tokens_are_checked_by_their_sha256() -> None:
    router = _router(RouteTable(token_sha256=frozenset({hashlib.sha256(b"t0k").hexdigest()})))
    assert router.is_authorized(b"Bearer t0k")
    assert router.is_authorized(b"bearer t0k")
    assert not router.is_authorized(b"Bearer other")
    assert not router.is_authorized(b"t0k")
    assert not router.is_authorized(None)


def test_alias_only_picks_weighted_nodes_with_instances() -> None:
    instance = RouteInstance(instance_id="i", endpoint="http://127.0.0.1:1")
    table = RouteTable(
        nodes={
            "p/up": NodeRoute(project="p", node="up", instances=(instance,), max_body_bytes=5),
            "p/down": NodeRoute(project="p", node="down"),
        },
        aliases={
            "p/a": AliasRoute(
                project="p",
                alias="a",
                targets=(AliasTarget(node="up", weight=1), AliasTarget(node="down", weight=99)),
            )
        },
    )
    router = _router(table)
    alias = router.aliases[b"p/a"]
    assert {alias.pick().node.node for _ in range(20)} == {"up"}  # type: ignore[union-attr]
    assert router.nodes[b"p/up"].max_body_bytes == 5
    assert router.nodes[b"p/down"].max_body_bytes == 99
