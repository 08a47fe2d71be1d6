"""The node spec's engine: pier by default, triton for a model in a local instance (its
metrics on Triton's own port, an extra port of the instance), refused naming the field
for an image node or a model in an image."""

from __future__ import annotations

import pytest

from pier.domain.errors import InvalidSpec
from pier.domain.specs import TRITON_METRICS_PORT, Engine, parse_node_spec


def test_a_model_node_runs_piers_engine_unless_told() -> None:
    spec = parse_node_spec({"model": "iris"})
    assert spec.engine is Engine.PIER
    assert spec.metrics_port is None and spec.extra_ports == ()


def test_engine_triton_scrapes_tritons_metrics_port() -> None:
    spec = parse_node_spec({"model": "iris", "engine": "triton", "max_batch_size": 8})
    assert spec.metrics_port == TRITON_METRICS_PORT
    assert spec.extra_ports == (TRITON_METRICS_PORT,)


@pytest.mark.parametrize(
    "fields",
    [
        {"image": "127.0.0.1:5000/echo:1", "port": 8080},
        {"model": "iris", "image": "127.0.0.1:5000/server:1"},
    ],
)
def test_engine_triton_elsewhere_is_refused_naming_engine(fields: dict[str, object]) -> None:
    with pytest.raises(InvalidSpec) as refused:
        parse_node_spec({**fields, "engine": "triton"})
    assert refused.value.field == "engine"


def test_an_unknown_engine_is_refused_naming_engine() -> None:
    with pytest.raises(InvalidSpec) as refused:
        parse_node_spec({"model": "iris", "engine": "vllm"})
    assert refused.value.field == "engine"
