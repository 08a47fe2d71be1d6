"""An alias spec's errors name the field; shares are integers summing to 100, and one
node may be given without a share (it takes the rest)."""

from __future__ import annotations

from typing import Any

import pytest

from pier.domain.aliases import effective_shares, parse_alias_spec
from pier.domain.errors import InvalidSpec


def nodes(*pairs: tuple[str, int | None]) -> list[dict[str, Any]]:
    return [{"node": n} if s is None else {"node": n, "share": s} for n, s in pairs]


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"nodes": nodes(("a", 30), ("b", 30))}, "nodes"),
        ({"nodes": nodes(("a", 50), ("a", 50))}, "nodes.1.node"),
        ({"nodes": nodes(("a", None), ("a", None))}, "nodes.1.node"),
        ({"nodes": nodes(("a", None), ("b", None))}, "nodes.1.share"),
        ({"nodes": nodes(("Bad_Name", None))}, "nodes.0.node"),
        ({"nodes": nodes(("a", 101))}, "nodes.0.share"),
        ({"nodes": nodes(("a", -1), ("b", None))}, "nodes.0.share"),
        ({"nodes": []}, "nodes"),
        ({}, "nodes"),
        (
            {"nodes": nodes(("a", None)), "mirrors": [{"node": "b", "percent": 0}]},
            "mirrors.0.percent",
        ),
        (
            {"nodes": nodes(("a", None)), "mirrors": [{"node": "b", "percent": 5}] * 2},
            "mirrors.1.node",
        ),
        ({"nodes": nodes(("a", None)), "sticky_header": "x session"}, "sticky_header"),
        ({"nodes": nodes(("a", None)), "metadata": {"a b": "x"}}, "metadata"),
        ({"nodes": nodes(("a", None)), "metadata": {"k": "x\x00"}}, "metadata.k"),
        ({"nodes": nodes(("a", None)), "colour": "red"}, "colour"),
        (
            {
                "nodes": nodes(("a", None)),
                "header_routes": [
                    {"header": "x-t", "value": "1", "node": "b"},
                    {"header": "X-T", "value": "1", "node": "c"},
                ],
            },
            "header_routes.1",
        ),
        (
            {
                "nodes": nodes(("a", None)),
                "header_routes": [{"header": "x-t", "value": " ", "node": "b"}],
            },
            "header_routes.0.value",
        ),
    ],
)
def test_a_bad_alias_spec_names_the_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_alias_spec(spec)
    assert caught.value.field == field
    assert caught.value.http_status == 422


def test_shares_that_do_not_sum_to_100_are_named_in_the_message() -> None:
    with pytest.raises(InvalidSpec, match=r"sum to 60 \(a=30 \+ b=30\), not 100"):
        parse_alias_spec({"nodes": nodes(("a", 30), ("b", 30))})


def test_a_node_alone_without_a_share_takes_100() -> None:
    assert parse_alias_spec({"nodes": nodes(("a", None))}).nodes[0].share == 100


def test_a_node_without_a_share_takes_what_the_others_leave() -> None:
    spec = parse_alias_spec({"nodes": nodes(("a", 80), ("b", None))})
    assert [(s.node, s.share) for s in spec.nodes] == [("a", 80), ("b", 20)]


def test_header_names_are_stored_lower_case() -> None:
    spec = parse_alias_spec(
        {
            "nodes": nodes(("a", None)),
            "sticky_header": "X-Session",
            "header_routes": [{"header": "X-Tester", "value": "yes", "node": "b"}],
        }
    )
    assert (spec.sticky_header, spec.header_routes[0].header) == ("x-session", "x-tester")
    assert spec.node_names() == ("a", "b")


def test_a_node_that_is_not_ready_gives_its_share_to_the_ready_ones() -> None:
    shares = [("a", 60), ("b", 20), ("c", 20)]
    taking = effective_shares(shares, {"a": True, "b": True, "c": False})
    assert taking == {"a": 75.0, "b": 25.0, "c": 0.0}
    assert effective_shares(shares, {}) == {"a": 0.0, "b": 0.0, "c": 0.0}
