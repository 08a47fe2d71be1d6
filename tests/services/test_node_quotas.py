"""Creating or updating a node past a project's quota is refused naming the quota; a
configuration the project does not allow is refused naming the field; the use shown
against the quotas is what the nodes claim. On a real SQLite store."""

from __future__ import annotations

from typing import Any

import pytest

from pier.domain.errors import ConfigurationNotAllowed, InvalidSpec, QuotaExceeded
from pier.domain.quotas import ProjectLimits, Usage
from pier.services.nodes import NodeService
from pier.services.quotas import QuotaService
from pier.store.repository import Repository

GIB = 2**30


def spec(**fields: Any) -> dict[str, Any]:
    return {"image": "127.0.0.1:5000/echo:1", "port": 8080, **fields}


def test_a_node_past_a_quota_is_refused_naming_the_quota(repo: Repository) -> None:
    quotas, nodes = QuotaService(repo), NodeService(repo)
    quotas.set("default", ProjectLimits(max_vcpus=8, max_memory_bytes=64 * GIB))
    nodes.create("default", "a", spec(configuration="c1.2", min_instances=2), actor="admin")
    with pytest.raises(QuotaExceeded, match="max_vcpus") as refused:
        nodes.create("default", "b", spec(configuration="c1.4", min_instances=2), actor="admin")
    assert refused.value.quota == "max_vcpus"
    assert refused.value.to_dict()["quota"] == "max_vcpus"
    assert "4 vCPUs of 8 vCPUs" in refused.value.message
    assert [n.name for n in repo.list_nodes("default")] == ["a"]  # nothing stored
    nodes.create("default", "b", spec(configuration="c1.4", min_instances=1), actor="admin")
    with pytest.raises(QuotaExceeded, match="max_vcpus"):
        nodes.update("default", "a", {"min_instances": 3}, actor="admin")
    nodes.update("default", "a", {"env": {"A": "1"}}, actor="admin")  # claims nothing more
    view = quotas.get("default")
    assert view.usage == Usage(instances=3, vcpus=8, memory_bytes=32 * GIB, gpus=0)


def test_an_instance_quota_counts_what_the_autoscaler_holds(repo: Repository) -> None:
    quotas, nodes = QuotaService(repo), NodeService(repo)
    nodes.create("default", "a", spec(min_instances=1, max_instances=4), actor="admin")
    repo.set_node_state("default", "a", reached_minimum=True, message=None,
                        crash_looping=False, target_instances=3)  # fmt: skip
    quotas.set("default", ProjectLimits(max_instances=4))
    assert quotas.get("default").usage.instances == 3
    with pytest.raises(QuotaExceeded, match="max_instances"):
        nodes.create("default", "b", spec(min_instances=2), actor="admin")


def test_a_configuration_the_project_does_not_allow_is_refused(repo: Repository) -> None:
    quotas, nodes = QuotaService(repo), NodeService(repo)
    quotas.set("default", ProjectLimits(configurations=["c1.2", "c1.4"]))
    with pytest.raises(ConfigurationNotAllowed) as refused:
        nodes.create("default", "gpu", spec(configuration="g1.1"), actor="admin")
    assert refused.value.field == "configuration" and "c1.2, c1.4" in refused.value.message
    nodes.create("default", "web", spec(configuration="c1.4"), actor="admin")
    with pytest.raises(ConfigurationNotAllowed):
        nodes.update("default", "web", {"configuration": "c1.8"}, actor="admin")


def test_limits_name_only_known_configurations(repo: Repository) -> None:
    with pytest.raises(InvalidSpec) as refused:
        QuotaService(repo).set("default", ProjectLimits(configurations=["c9.9"]))
    assert refused.value.field == "configurations"


def test_a_suspended_node_claims_nothing_and_resuming_it_must_fit(repo: Repository) -> None:
    quotas, nodes = QuotaService(repo), NodeService(repo)
    quotas.set("default", ProjectLimits(max_instances=2))
    nodes.create("default", "a", spec(min_instances=2), actor="admin")
    nodes.suspend("default", "a", actor="admin")
    assert quotas.get("default").usage.instances == 0
    nodes.create("default", "b", spec(min_instances=1), actor="admin")
    with pytest.raises(QuotaExceeded, match="max_instances"):
        nodes.resume("default", "a", actor="admin")
    assert repo.get_node("default", "a").suspended
