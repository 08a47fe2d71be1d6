"""The store's change counter (on SQLite and PostgreSQL): a reader that saw change N reads
only the nodes written after N, nothing when nothing was written, and every node again
once a node was removed; every write the controller reads on a tick counts a change."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from pier.domain.aliases import AliasSpec
from pier.domain.quotas import ProjectLimits
from pier.domain.roles import Role
from pier.domain.specs import parse_node_spec
from pier.store.repository import Repository

SPEC = {"image": "127.0.0.1:5000/echo:1", "port": 8080}
ALIAS = AliasSpec.model_validate({"nodes": [{"node": "a"}]})


@pytest.fixture
def repo(repo: Repository) -> Repository:
    for name in ("a", "b", "c"):
        repo.add_node("default", name, parse_node_spec(SPEC), runtime="docker")
    return repo


def names(repo: Repository, since: int | None) -> tuple[int, list[str], bool]:
    changes = repo.node_changes(since)
    return changes.seq, [n.name for n in changes.nodes], changes.whole


def test_a_reader_gets_every_node_then_only_the_changed_ones(repo: Repository) -> None:
    seq, first, whole = names(repo, None)
    assert (first, whole) == (["a", "b", "c"], True)
    assert names(repo, seq) == (seq, [], False)  # nothing written: nothing read

    repo.set_node_state("default", "b", reached_minimum=True, message=None, crash_looping=False)
    repo.pin_image("default", "c", "127.0.0.1:5000/echo@sha256:" + "c" * 64)
    later, changed, whole = names(repo, seq)
    assert (changed, whole, later > seq) == (["b", "c"], False, True)
    assert names(repo, later) == (later, [], False)

    repo.set_node_state("default", "b", reached_minimum=True, message=None, crash_looping=False)
    assert repo.node_changes(later).seq == later  # the same state again is no change

    repo.update_node_spec("default", "a", parse_node_spec({**SPEC, "min_instances": 2}))
    repo.mark_node_deleting("default", "c")
    repo.set_node_suspended("default", "b", suspended=True)
    newest, changed, _ = names(repo, later)
    assert changed == ["a", "b", "c"]
    assert [n.deleting for n in repo.node_changes(later).nodes] == [False, False, True]

    repo.remove_node("default", "c")  # a removed row cannot be read as changed
    assert names(repo, newest)[1:] == (["a", "b"], True)


WRITES: dict[str, Callable[[Repository], object]] = {
    "alias": lambda r: r.add_alias("default", "web", ALIAS),
    "limits": lambda r: r.set_project_limits("default", ProjectLimits(max_instances=4)),
    "member": lambda r: r.add_member("default", "ana", Role.CALLER),
    "token": lambda r: r.add_token(name="t", sha256="f" * 64, role="caller", project="default"),
}


@pytest.mark.parametrize("write", WRITES)
def test_what_the_routes_and_quotas_read_counts_a_change(repo: Repository, write: str) -> None:
    seq = repo.change_seq()
    WRITES[write](repo)
    assert repo.node_changes(seq).seq > seq
    assert repo.node_changes(seq).nodes == ()  # no node row changed


def test_concurrent_writers_each_count_a_change_of_their_own(repo: Repository) -> None:
    seq = repo.change_seq()
    errors: list[BaseException] = []

    def write(name: str) -> None:
        try:
            for i in range(5):
                repo.set_node_state("default", name, reached_minimum=i % 2 == 0, message=None,
                                    crash_looping=False)  # fmt: skip
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in ("a", "b", "c")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert repo.change_seq() == seq + 15
    assert names(repo, seq)[1] == ["a", "b", "c"]
