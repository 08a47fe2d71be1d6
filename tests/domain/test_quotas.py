"""The quota math is pure: what a node claims, what fits beside the others, and which
quota sets the ceiling."""

from __future__ import annotations

import pytest

from pier.domain.errors import QuotaExceeded
from pier.domain.quotas import (
    Claim,
    ProjectLimits,
    Usage,
    check_fits,
    instances_within,
    node_claim,
    usage_of,
)

GIB = 2**30


def test_a_node_claims_its_target_and_never_less_than_its_minimum() -> None:
    assert node_claim("c1.2", min_instances=2, target=None) == Claim("c1.2", 2)
    assert node_claim("c1.2", min_instances=2, target=1) == Claim("c1.2", 2)
    assert node_claim("c1.2", min_instances=2, target=5) == Claim("c1.2", 5)
    used = usage_of([Claim("c1.2", 2), Claim("g1.1", 1)])
    assert used == Usage(instances=3, vcpus=12, memory_bytes=64 * GIB, gpus=1)


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        (ProjectLimits(), None),
        (ProjectLimits(max_instances=10), (8, "max_instances")),
        (ProjectLimits(max_instances=10, max_vcpus=10), (3, "max_vcpus")),
        (ProjectLimits(max_memory_bytes=30 * GIB), (1, "max_memory_bytes")),
        (ProjectLimits(max_gpus=0), None),  # c1.2 uses no GPU: a GPU quota never holds it
        (ProjectLimits(max_vcpus=2), (0, "max_vcpus")),  # already past it: no room at all
    ],
)
def test_the_tightest_quota_sets_how_many_more_instances_fit(
    limits: ProjectLimits, expected: tuple[int, str] | None
) -> None:
    others = usage_of([Claim("c1.2", 2)])  # 4 vCPUs, 16 GiB
    assert instances_within(limits, others, "c1.2") == expected


def test_a_claim_past_a_quota_is_refused_naming_it() -> None:
    with pytest.raises(QuotaExceeded) as refused:
        check_fits("team", ProjectLimits(max_gpus=1), Usage(gpus=1), Claim("g1.1", 1))
    assert refused.value.quota == "max_gpus"
    assert "project 'team' quota max_gpus reached" in refused.value.message
    check_fits("team", ProjectLimits(max_gpus=2), Usage(gpus=1), Claim("g1.1", 1))
