"""The gateway counts each routed instance's requests, answered (below 500) and failed (a
5xx, its own 502/504 for the instance, a refused connection), for the control plane's
passive health; an instance's series goes when its route goes, and a private node's
instances are shown only with a token."""

from __future__ import annotations

from collections.abc import Callable

from gateway_processes import TOKEN, Gateway, Upstream, node, table, wait_until, write_routes

from pier.controller.gateway_view import parse_gateway_figures
from pier.controller.passive import InstanceTraffic
from pier.domain.routes import RouteInstance
from pier.domain.specs import Access
from pier.gateway.pool import Upstream as PoolEntry


def test_an_answer_below_500_counts_answered_and_a_5xx_or_refusal_failed() -> None:
    entry = PoolEntry(RouteInstance(instance_id="web-1", endpoint="http://127.0.0.1:9"))
    for status in (200, 404, 500, 503):
        entry.acquire()
        entry.done(status, True)
    entry.acquire()
    entry.done(499, False)  # the client went away: no outcome of the instance
    entry.mark_down(0.0)  # refused a connection
    assert (entry.answered, entry.failed, entry.in_flight) == (2, 3, 0)


def test_routed_instances_show_their_counts_until_their_route_goes(
    gateway_factory: Callable[..., Gateway], upstreams: dict[str, Upstream], dead_endpoint: str
) -> None:
    a = upstreams["a"].endpoint
    routes = table(
        node("web", a), node("down", dead_endpoint), node("hidden", a, access=Access.PRIVATE)
    )
    gw = gateway_factory(routes)
    auth = {"authorization": f"Bearer {TOKEN}"}
    with gw.client() as client:
        statuses = [client.get("/default/nodes/web/x").status_code for _ in range(3)]
        statuses.append(client.get("/default/nodes/web/drop").status_code)  # no answer
        statuses.append(client.get("/default/nodes/down/x").status_code)  # refused
        statuses.append(client.get("/default/nodes/hidden/x", headers=auth).status_code)
        assert statuses == [200, 200, 200, 502, 502, 200]
        public = parse_gateway_figures(client.get("/metrics").text).instances
        assert public == {
            "web-0": InstanceTraffic(answered=3, failed=1),
            "down-0": InstanceTraffic(answered=0, failed=1),
        }
        every = parse_gateway_figures(client.get("/metrics", headers=auth).text).instances
        assert every["hidden-0"] == InstanceTraffic(answered=1)

        write_routes(gw.routes_file, table(node("down", dead_endpoint), version=2))
        wait_until(lambda: gw.routes_version() == 2, what="the new routes")
        every = parse_gateway_figures(client.get("/metrics", headers=auth).text).instances
        assert set(every) == {"down-0"}
