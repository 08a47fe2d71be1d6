"""The store's node operations: a spec update bumps the generation by the domain's rule,
a unit of work stores all of its writes or none, and removing a node forgets its events."""

from __future__ import annotations

import pytest

from pier.domain.errors import NodeDeleting
from pier.domain.specs import parse_node_spec
from pier.services.nodes import NodeService
from pier.store.repository import Repository

SPEC = {"image": "127.0.0.1:5000/echo:1", "port": 8080}


@pytest.fixture
def repo(repo: Repository) -> Repository:
    repo.add_node("default", "web", parse_node_spec(SPEC), runtime="docker")
    return repo


def test_a_spec_update_bumps_the_generation_only_for_a_new_shape(repo: Repository) -> None:
    repo.pin_image("default", "web", "127.0.0.1:5000/echo@sha256:" + "a" * 64)
    scaled = repo.update_node_spec("default", "web", parse_node_spec({**SPEC, "min_instances": 2}))
    assert (scaled.generation, scaled.pinned_image is not None) == (1, True)
    moved = repo.update_node_spec(
        "default", "web", parse_node_spec({**SPEC, "image": "127.0.0.1:5000/echo:2"}), repin=True
    )
    assert (moved.generation, moved.pinned_image) == (2, None)


def test_a_unit_of_work_stores_all_of_its_writes_or_none(repo: Repository) -> None:
    with pytest.raises(RuntimeError), repo.unit_of_work():
        repo.mark_node_deleting("default", "web")
        repo.add_event("default", node="web", kind="node_deleting", message="going")
        raise RuntimeError("the second step failed")
    assert not repo.get_node("default", "web").deleting
    assert not repo.list_events("default", "web")

    with repo.unit_of_work():
        repo.mark_node_deleting("default", "web")
        repo.add_event("default", node="web", kind="node_deleting", message="going")
    assert repo.get_node("default", "web").deleting
    assert [e.kind for e in repo.list_events("default", "web")] == ["node_deleting"]


def test_removing_a_node_forgets_its_events(repo: Repository) -> None:
    repo.add_event("default", node="web", kind="node_created", message="made")
    repo.remove_node("default", "web")
    assert not repo.list_nodes() and not repo.list_events("default", "web")


def test_suspend_and_resume_are_idempotent_events_refused_for_a_deleting_node(
    repo: Repository,
) -> None:
    nodes = NodeService(repo)
    repo.set_node_state("default", "web", reached_minimum=True, message=None,
                        crash_looping=False, target_instances=3)  # fmt: skip
    assert nodes.suspend("default", "web", actor="admin").status == "Suspended"
    assert nodes.suspend("default", "web", actor="admin").status == "Suspended"
    resumed = nodes.resume("default", "web", actor="admin")
    assert resumed.status == "Created"  # afresh: to its minimum, not the old target
    assert resumed.instances.target == 1
    nodes.resume("default", "web", actor="admin")
    kinds = [e.kind for e in repo.list_events("default", "web")]
    assert (kinds.count("node_suspended"), kinds.count("node_resumed")) == (1, 1)

    repo.mark_node_deleting("default", "web")
    with pytest.raises(NodeDeleting, match=r"'web'.*being deleted.*cannot be suspended"):
        nodes.suspend("default", "web", actor="admin")


def test_a_ticks_view_from_before_a_resume_does_not_undo_it(repo: Repository) -> None:
    nodes = NodeService(repo)
    nodes.suspend("default", "web", actor="admin")
    seen = repo.get_node("default", "web")  # a tick reads the node, suspended ...
    nodes.resume("default", "web", actor="admin")  # ... it is resumed meanwhile
    repo.set_node_state(
        "default", "web", reached_minimum=True, message=None, crash_looping=False,
        target_instances=0, suspended=seen.suspended,
    )  # fmt: skip
    resumed = repo.get_node("default", "web")
    assert (resumed.reached_minimum, resumed.target_instances) == (False, None)
