"""Aliases in the store and their use cases, on a real SQLite file: nodes an alias names
must exist, a node an alias uses cannot be deleted, and the view says per node why it
takes no traffic."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pier.domain.errors import AliasNotFound, InvalidSpec, NameTaken, NodeInUse
from pier.domain.event_kinds import EventKind
from pier.domain.instance_status import InstanceStatus
from pier.domain.records import InstanceRecord
from pier.domain.specs import parse_node_spec
from pier.services.aliases import AliasService
from pier.services.nodes import NodeService
from pier.store.repository import Repository

SPEC = {"image": "127.0.0.1:5000/echo:1", "port": 8080, "min_instances": 2}
TWO = {"nodes": [{"node": "v1", "share": 80}, {"node": "v2"}]}


@pytest.fixture
def repo(repo: Repository) -> Repository:
    for name in ("v1", "v2", "v3"):
        repo.add_node("default", name, parse_node_spec(SPEC), runtime="docker")
    return repo


@pytest.fixture
def aliases(repo: Repository) -> AliasService:
    return AliasService(repo)


def healthy(repo: Repository, node: str, count: int) -> None:
    now = datetime.now(UTC)
    for index in range(count):
        repo.upsert_instance(
            InstanceRecord(
                id=f"{node}-{index}", project="default", node=node,
                status=InstanceStatus.HEALTHY, since=now, endpoint=None, restarts=0,
                last_error=None, generation=1, runtime="docker", limits_applied=(),
                limits_not_applied=(), created_at=now,
            )
        )  # fmt: skip


def test_an_alias_is_stored_listed_set_and_deleted(aliases: AliasService, repo: Repository) -> None:
    created = aliases.create("default", "prod", TWO, actor="admin")
    assert [(n.node, n.share) for n in created.nodes] == [("v1", 80), ("v2", 20)]
    assert [a.name for a in aliases.list("default")] == ["prod"]
    switched = aliases.update("default", "prod", {"nodes": [{"node": "v2"}]}, actor="admin")
    assert [(n.node, n.share) for n in switched.nodes] == [("v2", 100)]
    with pytest.raises(AliasNotFound, match="did you mean 'prod'"):
        aliases.get("default", "prd")
    aliases.delete("default", "prod", actor="admin")
    with pytest.raises(AliasNotFound):
        aliases.get("default", "prod")
    kinds = [e.kind for e in repo.list_events("default")]
    assert kinds == [EventKind.ALIAS_CREATED, EventKind.ALIAS_UPDATED, EventKind.ALIAS_DELETED]


def test_a_taken_name_and_a_bad_name_are_refused(aliases: AliasService) -> None:
    aliases.create("default", "prod", TWO, actor="admin")
    with pytest.raises(NameTaken):
        aliases.create("default", "prod", TWO, actor="admin")
    with pytest.raises(InvalidSpec) as caught:
        aliases.create("default", "Prod!", TWO, actor="admin")
    assert caught.value.field == "name"


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"nodes": [{"node": "v1", "share": 50}, {"node": "v9"}]}, "nodes.1.node"),
        ({"nodes": [{"node": "v1"}], "mirrors": [{"node": "v8", "percent": 5}]}, "mirrors.0.node"),
        (
            {
                "nodes": [{"node": "v1"}],
                "header_routes": [{"header": "x", "value": "1", "node": "v7"}],
            },
            "header_routes.0.node",
        ),
    ],
)
def test_an_unknown_node_is_named_by_its_field(
    aliases: AliasService, spec: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidSpec, match="no node") as caught:
        aliases.create("default", "prod", spec, actor="admin")
    assert caught.value.field == field


def test_a_node_being_deleted_cannot_join_an_alias(aliases: AliasService, repo: Repository) -> None:
    NodeService(repo).delete("default", "v3", actor="admin")
    with pytest.raises(InvalidSpec, match="being deleted") as caught:
        aliases.create("default", "prod", {"nodes": [{"node": "v3"}]}, actor="admin")
    assert caught.value.field == "nodes.0.node"


def test_deleting_a_node_an_alias_uses_is_refused_naming_the_alias(
    aliases: AliasService, repo: Repository
) -> None:
    aliases.create("default", "prod", TWO, actor="admin")
    shadow = {"nodes": [{"node": "v1"}], "mirrors": [{"node": "v3", "percent": 10}]}
    aliases.create("default", "shadow", shadow, actor="admin")
    nodes = NodeService(repo)
    with pytest.raises(NodeInUse, match="'prod'") as caught:
        nodes.delete("default", "v2", actor="admin")
    assert caught.value.http_status == 409
    with pytest.raises(NodeInUse, match="'shadow'"):
        nodes.delete("default", "v3", actor="admin")
    assert not repo.get_node("default", "v2").deleting
    aliases.update("default", "prod", {"nodes": [{"node": "v1"}]}, actor="admin")
    assert nodes.delete("default", "v2", actor="admin").status == "Deleting"


def test_the_view_says_why_a_node_takes_no_traffic(aliases: AliasService, repo: Repository) -> None:
    healthy(repo, "v1", 2)
    healthy(repo, "v2", 1)
    view = aliases.create("default", "prod", TWO, actor="admin")
    v1, v2 = view.nodes
    assert (v1.ready, v1.effective_share, v1.why_not_ready) == (True, 100.0, None)
    assert (v2.ready, v2.effective_share) == (False, 0.0)
    assert v2.why_not_ready == "1/2 Healthy, below its minimum"
    healthy(repo, "v2", 2)
    v1, v2 = aliases.get("default", "prod").nodes
    assert (v1.effective_share, v2.effective_share, v2.ready) == (80.0, 20.0, True)


def test_a_suspended_node_of_an_alias_takes_no_traffic_and_says_so(
    aliases: AliasService, repo: Repository
) -> None:
    healthy(repo, "v1", 2)
    healthy(repo, "v2", 2)
    aliases.create("default", "prod", TWO, actor="admin")
    NodeService(repo).suspend("default", "v2", actor="admin")
    v1, v2 = aliases.get("default", "prod").nodes
    assert (v1.effective_share, v2.effective_share) == (100.0, 0.0)
    assert (v2.ready, v2.why_not_ready, v2.status) == (False, "suspended", "Suspended")
