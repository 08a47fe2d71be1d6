"""The audit log of a real `pier up`: each change asked of the API is in it with who,
what, when, from where and its outcome (refusals too), never a secret's value; it can be
filtered, paged and exported as JSON lines. A copy of the store and a rotated key reveal
no secret either."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from typing import Any

import httpx
from sqlalchemy import inspect, text

from pier.store.database import create_store_engine
from tests.conftest import PierProcess

PASSWORD = "audit-test-password-9c1e"


def audit(pier: PierProcess, **params: Any) -> dict[str, Any]:
    with pier.api() as api:
        response = api.get("/api/v1/audit", params=params)
        assert response.status_code == 200, response.text
        page: dict[str, Any] = response.json()
        return page


def store_contents(pier: PierProcess) -> Iterator[tuple[str, bytes]]:
    """Everything the store holds, as bytes: SQLite's files, or PostgreSQL's rows as text."""
    url = pier.extra_env.get("PIER_DATABASE_URL")
    if url is None:
        for path in pier.data_dir.glob("pier.db*"):
            yield str(path), path.read_bytes()
        return
    engine = create_store_engine(url)
    try:
        with engine.connect() as connection:
            for table in inspect(connection).get_table_names():
                rows = connection.scalars(text(f'SELECT CAST(t AS text) FROM "{table}" t'))
                yield table, "\n".join(rows).encode()
    finally:
        engine.dispose()


def make_changes(pier: PierProcess) -> None:
    with pier.api() as api:
        body = {"value": {"username": "me", "password": PASSWORD}}
        assert api.put("/api/v1/projects/default/secrets/regcred", json=body).status_code == 200
        bad = {"name": "web", "spec": {"image": "127.0.0.1:5000/echo:1", "min_instances": -1}}
        assert api.post("/api/v1/projects/default/nodes", json=bad).status_code == 422
        assert api.delete("/api/v1/projects/default/secrets/nope").status_code == 404
        assert api.get("/api/v1/projects/default/secrets").status_code == 200  # not a change
    with httpx.Client(base_url=pier.url, trust_env=False) as anonymous:
        wrong = {"Authorization": "Bearer not-the-token"}
        answer = anonymous.put("/api/v1/projects/default/secrets/x", json=body, headers=wrong)
        assert answer.status_code == 401


def test_each_change_is_in_the_audit_log_with_its_outcome(pier: PierProcess) -> None:
    make_changes(pier)
    entries = audit(pier, project="default")["entries"]
    seen = [(e["actor"], e["action"], e["target"], e["outcome"], e["error"]) for e in entries]
    assert seen == [
        ("anonymous", "put_secret", "x", "refused", "unauthorized"),
        ("admin", "delete_secret", "nope", "refused", "not_found"),
        ("admin", "create_node", None, "refused", "invalid_spec"),
        ("admin", "put_secret", "regcred", "ok", None),
    ]
    assert {e["client"] for e in entries} == {"127.0.0.1"}
    assert entries[-1]["method"] == "PUT"
    assert entries[-1]["path"] == "/api/v1/projects/default/secrets/regcred"
    assert PASSWORD not in json.dumps(entries) and "not-the-token" not in json.dumps(entries)

    only_admin_refusals = audit(pier, actor="admin", outcome="refused")["entries"]
    assert [e["action"] for e in only_admin_refusals] == ["delete_secret", "create_node"]
    first = audit(pier, limit=3)
    assert len(first["entries"]) == 3 and first["next_before"] is not None
    rest = audit(pier, limit=3, before=first["next_before"])
    assert [e["action"] for e in rest["entries"]] == ["put_secret"]
    assert rest["next_before"] is None


def test_the_cli_lists_filters_and_exports_the_audit_log(pier: PierProcess) -> None:
    make_changes(pier)
    listed = pier.cli_json("audit", "list", "--project", "default", "--since", "1h",
                           "--actor", "admin")  # fmt: skip
    assert [e["action"] for e in listed["entries"]] == [
        "delete_secret",
        "create_node",
        "put_secret",
    ]
    lines = pier.cli("audit", "export", "--outcome", "ok").stdout.splitlines()
    exported = [json.loads(line) for line in lines]
    assert [(e["action"], e["target"]) for e in exported] == [("put_secret", "regcred")]
    assert pier.cli("audit", "list", "--since", "2030-01-01T00:00:00").stdout.count("\n") <= 1


def test_neither_the_store_nor_a_rotated_key_reveals_a_secret(pier: PierProcess) -> None:
    make_changes(pier)
    key_file = pier.data_dir / "secrets.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    old_key = key_file.read_text()
    rotated = pier.cli_json("secret", "rotate-key")
    assert (rotated["sealed"], rotated["key_source"]) == (1, "file")
    assert key_file.read_text() != old_key
    pier.stop()  # the WAL is checkpointed into the store file
    for where, content in store_contents(pier):
        assert PASSWORD.encode() not in content, where
    pier.start()  # the new key opens what the rotation sealed
    with pier.api() as api:
        secrets = api.get("/api/v1/projects/default/secrets").json()["secrets"]
        assert [(s["name"], s["keys"]) for s in secrets] == [("regcred", ["password", "username"])]
    assert audit(pier, action="rotate_secrets_key")["entries"][0]["outcome"] == "ok"


def test_project_limits_are_set_and_shown_with_use_through_the_cli(pier: PierProcess) -> None:
    shown = pier.cli_json("project", "limits", "set", "--configurations", "c1.2,c1.4",
                          "--max-vcpus", "8", "--max-memory", "64GiB")  # fmt: skip
    assert shown["limits"] == {
        "configurations": ["c1.2", "c1.4"], "max_instances": None, "max_vcpus": 8,
        "max_memory_bytes": 64 * 2**30, "max_gpus": None,
    }  # fmt: skip
    assert shown["usage"] == {"instances": 0, "vcpus": 0, "memory_bytes": 0, "gpus": 0}
    pier.cli("project", "limits", "set", "--max-vcpus", "none", "--max-gpus", "0")
    limits = pier.cli_json("project", "limits", "get")["limits"]
    assert (limits["max_vcpus"], limits["max_gpus"], limits["max_memory_bytes"]) == (
        None, 0, 64 * 2**30,
    )  # fmt: skip
    table = pier.cli("project", "limits", "get").stdout
    assert "c1.2, c1.4" in table and "64 GiB" in table
    refused = pier.cli("project", "limits", "set", "--max-vcpus", "lots", check=False)
    assert refused.returncode != 0 and "--max-vcpus" in refused.stderr
    entries = audit(pier, action="set_project_limits")["entries"]
    assert [(e["project"], e["outcome"]) for e in entries] == [("default", "ok")] * 2
