"""The node spec's engine: pier by default, triton for a model in a local instance or in
an image (its metrics on Triton's own port, an extra port of the instance), refused
naming the field for an image node; on the docker runtime triton needs its image."""

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


def test_engine_triton_on_an_image_node_is_refused_naming_engine() -> None:
    with pytest.raises(InvalidSpec) as refused:
        parse_node_spec({"image": "127.0.0.1:5000/echo:1", "port": 8080, "engine": "triton"})
    assert refused.value.field == "engine"


def test_engine_triton_runs_a_model_in_a_triton_image() -> None:
    spec = parse_node_spec({"model": "iris", "image": "nvcr.io/triton:1", "engine": "triton"})
    assert spec.model_in_image and spec.extra_ports == (TRITON_METRICS_PORT,)


def test_engine_triton_on_the_docker_runtime_without_an_image_is_refused_naming_image() -> None:
    with pytest.raises(InvalidSpec) as refused:
        parse_node_spec({"model": "iris", "engine": "triton", "runtime": "docker"})
    assert refused.value.field == "image"
    assert "tritonserver" in refused.value.message and "pip install pier" in refused.value.message


def test_an_unknown_engine_is_refused_naming_engine() -> None:
    with pytest.raises(InvalidSpec) as refused:
        parse_node_spec({"model": "iris", "engine": "vllm"})
    assert refused.value.field == "engine"
