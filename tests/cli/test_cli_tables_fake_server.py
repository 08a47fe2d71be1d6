"""How tables read at 80 columns, piped, and with --output wide, against a fake control plane."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from pier.cli.main import app
from tests.cli.conftest import FakePier, instance_json, node_json

runner = CliRunner()
NODES = "/api/v1/projects/default/nodes"
ENDPOINT = "http://127.0.0.1:41235"
ERROR = "connection refused while checking /v2/health/ready on the instance, 3 times in a row"
INSTANCES = {
    "instances": [
        instance_json(id="iris-3fa9c1", status="Unhealthy", restarts=2, pid=48213,
                      endpoint=ENDPOINT, limits_applied=["cpus=1", "memory=2 GiB"],
                      limits_not_applied=["gpus=1: no GPU on this machine"], last_error=ERROR),
        instance_json(id="web-77aa01", node="web", runtime="docker", pid=None,
                      container_id="4f1c2a9b8d7e" + "0" * 52,
                      endpoint="http://127.0.0.1:32768", generation=3),
    ]
}  # fmt: skip
TERMINAL_80 = {"COLUMNS": "80", "TTY_COMPATIBLE": "1", "NO_COLOR": "1"}
PIPED_80 = {"COLUMNS": "80", "TTY_COMPATIBLE": "0"}


def lines_of(text: str) -> list[str]:
    return [re.sub(r"\x1b\[[0-9;]*m", "", line).rstrip() for line in text.splitlines()]


@pytest.fixture
def instances(cli_on_fake_pier: FakePier) -> FakePier:
    """Two instances on the local runtime."""
    local = INSTANCES["instances"][0]
    second = {**local, "id": "iris-b2c3d4", "pid": 48301, "status": "Healthy", "last_error": None}
    cli_on_fake_pier.on("GET", f"{NODES}/iris/instances", {"instances": [local, second]})
    return cli_on_fake_pier


def test_instances_show_the_pid_or_the_container_id_fake_server(
    cli_on_fake_pier: FakePier,
) -> None:
    cli_on_fake_pier.on("GET", f"{NODES}/iris/instances", INSTANCES)
    result = runner.invoke(app, ["node", "instances", "iris"], env=PIPED_80)
    assert result.exit_code == 0, result.output
    header, local, docker = lines_of(result.stdout)
    assert header.split()[4] == "PID/CONTAINER"
    assert local.split()[:5] == ["iris-3fa9c1", "Unhealthy", local.split()[2], "2", "48213"]
    assert docker.split()[4] == "4f1c2a9b8d7e"  # as `docker ps` shortens it


def test_instances_of_one_runtime_name_the_column_for_it_fake_server(
    instances: FakePier,
) -> None:
    header, first, second = lines_of(runner.invoke(app, ["node", "instances", "iris"]).stdout)
    assert header.split()[4] == "PID"
    assert (first.split()[4], second.split()[4]) == ("48213", "48301")


def test_a_table_at_80_columns_keeps_ids_and_urls_whole_on_one_line_fake_server(
    instances: FakePier,
) -> None:
    result = runner.invoke(app, ["node", "instances", "iris"], env=TERMINAL_80)
    assert result.exit_code == 0, result.output
    lines = lines_of(result.stdout)
    assert len(lines) == 3, result.stdout  # a header and one line per instance
    assert all(len(line) <= 80 for line in lines), result.stdout
    assert ENDPOINT in lines[1] and "iris-3fa9c1" in lines[1] and "48213" in lines[1]
    assert lines[0].rstrip().endswith(("LAST ERROR", "…"))
    assert lines[1].endswith("…")  # the error is cut, not wrapped onto more lines
    assert "LIMITS" not in lines[0]  # only with --output wide


def test_piped_tables_are_never_cut_or_wrapped_fake_server(instances: FakePier) -> None:
    result = runner.invoke(app, ["node", "instances", "iris"], env=PIPED_80)
    lines = lines_of(result.stdout)
    assert len(lines) == 3, result.stdout
    assert lines[1].endswith(ERROR)
    assert ENDPOINT in lines[1]


@pytest.mark.parametrize("env", [TERMINAL_80, PIPED_80], ids=["terminal", "piped"])
def test_output_wide_shows_every_column_in_full_fake_server(
    instances: FakePier, env: dict[str, str]
) -> None:
    result = runner.invoke(app, ["node", "instances", "iris", "--output", "wide"], env=env)
    assert result.exit_code == 0, result.output
    header, local, _ = lines_of(result.stdout)
    assert len(local) > 80
    assert "LIMITS" in header and "NOT ENFORCED" in header and "GENERATION" in header
    assert "gpus=1: no GPU on this machine" in local and local.endswith(ERROR)


def test_node_list_says_a_node_is_scaled_to_zero_fake_server(
    cli_on_fake_pier: FakePier,
) -> None:
    idle = node_json(
        name="iris-auto", spec={"min_instances": 0, "max_instances": 2},
        instances={"healthy": 0, "total": 0, "target": 0},
    )  # fmt: skip
    cli_on_fake_pier.on("GET", NODES, {"nodes": [idle]})
    cli_on_fake_pier.on("GET", f"{NODES}/iris-auto", idle)
    listing = lines_of(runner.invoke(app, ["node", "list"], env=PIPED_80).stdout)
    assert "0/0 (scaled to zero)" in listing[1]
    assert "0/0 Healthy" not in listing[1]
    shown = runner.invoke(app, ["node", "get", "iris-auto"], env=PIPED_80).stdout
    assert "0/0 (scaled to zero)" in shown
