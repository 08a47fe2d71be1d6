"""The UI's pure pieces: test-request snippets, chart columns, rolling-update progress,
the alias shares editor's form."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from pier.api.policy import POLICY
from pier.domain.errors import BadRequest, InvalidSpec
from pier.domain.views import (
    InstanceCounts,
    InstanceView,
    NodeView,
    SeriesLine,
    SeriesMetric,
    SeriesPoint,
    SeriesView,
)
from pier.ui import actions, calls, charts, pages
from pier.ui.calls import (
    TOKEN_HINT,
    curl_command,
    example_values,
    image_request,
    model_request,
    python_snippet,
)
from pier.ui.charts import aligned
from pier.ui.pages import RollingUpdate, rolling_update
from pier.ui.rendering import age

BASE = "http://127.0.0.1:8000/default/nodes/iris"


def test_a_model_form_becomes_a_v2_request_and_its_snippets() -> None:
    form = {"datatype:X": "FP32", "shape:X": "[1, 4]", "data:X": "[1, 2, 3, 4]", "csrf": "x"}
    call = model_request(BASE, "iris", form)
    assert call.url == f"{BASE}/v2/models/iris/infer"
    body = json.loads(call.body)
    assert body == {"inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP32",
                                "data": [1, 2, 3, 4]}]}  # fmt: skip
    curl = curl_command(call)
    assert curl.startswith(f"curl -sS -X POST {BASE}/v2/models/iris/infer")
    assert TOKEN_HINT in curl and "--data-raw" in curl
    python = python_snippet(call, "iris", BASE)
    assert "InferenceServerClient('127.0.0.1:8000/default/nodes/iris')" in python
    assert "dtype=np.float32" in python and "client.infer('iris'" in python
    compile(python, "snippet", "exec")


def test_an_image_form_becomes_its_request() -> None:
    form = {"method": "post", "path": "echo?x=1", "headers": "X-A: 1\n\nX-B: two", "body": "hi"}
    call = image_request(BASE, form)
    assert (call.method, call.url) == ("POST", f"{BASE}/echo?x=1")
    assert call.headers == {"X-A": "1", "X-B": "two"} and call.body == b"hi"
    compile(python_snippet(call, None, BASE), "snippet", "exec")
    with pytest.raises(BadRequest, match="Name: value"):
        image_request(BASE, {"headers": "no colon here"})
    with pytest.raises(BadRequest, match="method"):
        image_request(BASE, {"method": "TRACE"})


def test_example_values_fill_the_shape() -> None:
    assert example_values("FP32", [-1, 4]) == [1.0] * 4
    assert example_values("BYTES", [2]) == ["text", "text"]
    assert example_values("INT64", [2, 3]) == [1] * 6


def test_chart_lines_share_one_time_axis() -> None:
    def view(metric: SeriesMetric, points: dict[float, float | None]) -> SeriesView:
        line = SeriesLine(
            instance=None, points=[SeriesPoint(t=t, value=v) for t, v in points.items()]
        )
        return SeriesView(metric=metric, step=5, series=[line])

    data = aligned(
        [view(SeriesMetric.P50, {10: 0.1, 15: 0.2}), view(SeriesMetric.P99, {15: 0.5, 20: None})]
    )
    assert data["t"] == [10, 15, 20]
    assert data["lines"] == [
        {"label": "p50", "values": [0.1, 0.2, None]},
        {"label": "p99", "values": [None, 0.5, None]},
    ]


def test_an_aliases_chart_lines_are_named_for_their_node() -> None:
    def line(node: str | None) -> SeriesLine:
        return SeriesLine(instance=None, node=node, points=[SeriesPoint(t=5, value=1.0)])

    view = SeriesView(metric=SeriesMetric.REQUESTS_PER_S, step=5, series=[line(None), line("v2")])
    labels = [line["label"] for line in aligned([view])["lines"]]
    assert labels == ["requests_per_s", "requests_per_s v2"]


def test_age_reads_as_people_say_it() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert age(now - timedelta(seconds=42), now) == "42s"
    assert age(now - timedelta(minutes=5, seconds=3), now) == "5m"
    assert age(now - timedelta(days=2, hours=1), now) == "2d"


def test_every_signed_in_ui_route_is_in_the_policy() -> None:
    """A route missing from the table would be the installation admin's alone."""
    routes = [r for m in (actions, calls, charts, pages) for r in m.router.routes]
    seen = {(method, r.path) for r in routes for method in r.methods}  # type: ignore[attr-defined]
    assert sorted(seen - set(POLICY)) == [("GET", "/sign-in"), ("POST", "/sign-in")]


def test_a_rolling_update_counts_the_instances_of_the_new_generation() -> None:
    node = NodeView.model_construct(
        generation=3, instances=InstanceCounts(healthy=2, total=3, target=2)
    )

    def instance(generation: int, status: str) -> InstanceView:
        return InstanceView.model_construct(generation=generation, status=status)

    assert rolling_update(node, [instance(3, "Healthy"), instance(3, "Preparing")]) is None
    update = rolling_update(
        node, [instance(2, "Healthy"), instance(3, "Healthy"), instance(3, "Preparing")]
    )
    assert update == RollingUpdate(generation=3, replaced=1, target=2)


def test_the_shares_editor_form_becomes_the_alias_nodes() -> None:
    form = {"csrf": "x", "share.b": "30", "share.a": "60", "add_node": "c", "add_share": "10"}
    assert actions.shares_from_form(form) == [
        {"node": "b", "share": 30},
        {"node": "a", "share": 60},
        {"node": "c", "share": 10},
    ]
    assert actions.shares_from_form({"share.a": "100", "add_node": ""}) == [
        {"node": "a", "share": 100}
    ]
    with pytest.raises(InvalidSpec, match=r"share\.a"):
        actions.shares_from_form({"share.a": "1.5"})
    with pytest.raises(InvalidSpec, match="add_share"):
        actions.shares_from_form({"share.a": "100", "add_node": "c"})
