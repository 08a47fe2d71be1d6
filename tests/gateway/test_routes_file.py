"""The routes file: written atomically, read back, a broken one ignored."""

from __future__ import annotations

from pathlib import Path

from pier.domain.routes import NodeRoute, RouteTable
from pier.gateway.sync import RouteSync, write_atomically


def _sync(path: Path, applied: list[RouteTable]) -> RouteSync:
    return RouteSync(applied.append, control_url=None, token_file=None, routes_file=path)


def test_a_written_table_is_read_back(tmp_path: Path) -> None:
    path = tmp_path / "state" / "routes.json"
    table = RouteTable(version=4, nodes={"p/n": NodeRoute(project="p", node="n")})
    write_atomically(path, table)
    assert _sync(path, []).load_file() == table
    assert [p.name for p in path.parent.iterdir()] == ["routes.json"]  # no temporary left


def test_a_missing_or_broken_file_gives_no_table(tmp_path: Path) -> None:
    path = tmp_path / "routes.json"
    assert _sync(path, []).load_file() is None
    path.write_text("{not json")
    assert _sync(path, []).load_file() is None
