"""What the CLI prints for people and for scripts, against a fake control plane."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from pier.cli.main import app
from pier.cli.node import describe_progress
from pier.cli.output import age, human_bytes
from pier.domain.views import InstanceView, NodeView
from tests.cli.conftest import FakePier, body_of, error_response, instance_json, node_json

runner = CliRunner()
NODES = "/api/v1/projects/default/nodes"
NODE = node_json(
    spec={"configuration": "c1.2", "min_instances": 2, "max_instances": None,
          "env": {"A": "1"}, "secret_env": {"KEY": "***"}},
    instances={"healthy": 2, "total": 2, "target": 2},
)  # fmt: skip


def test_node_list_prints_a_table_fake_server(cli_on_fake_pier: FakePier) -> None:
    cli_on_fake_pier.on("GET", NODES, {"nodes": [NODE]})
    result = runner.invoke(app, ["node", "list"])
    assert result.exit_code == 0, result.output
    header, row = result.stdout.splitlines()
    assert header.split() == [
        "NAME", "STATUS", "INSTANCES", "SOURCE", "CONFIG", "MIN-MAX", "AGE", "MESSAGE"
    ]  # fmt: skip
    assert row.split()[:7] == ["iris", "Healthy", "2/2", "Healthy", "model", "iris:1", "c1.2"]


def test_output_json_prints_the_api_shape_before_or_after_the_command_fake_server(
    cli_on_fake_pier: FakePier,
) -> None:
    instances = {"instances": [instance_json(id="i-1")]}
    cli_on_fake_pier.on("GET", f"{NODES}/iris/instances", instances)
    before = runner.invoke(app, ["--output", "json", "node", "instances", "iris"])
    after = runner.invoke(app, ["node", "instances", "iris", "-o", "json"])
    assert json.loads(before.stdout) == json.loads(after.stdout) == instances


def test_node_get_shows_secrets_hidden_and_the_message_fake_server(
    cli_on_fake_pier: FakePier,
) -> None:
    unhealthy = {**NODE, "status": "Unhealthy", "message": "crash loop: ImportError"}
    cli_on_fake_pier.on("GET", f"{NODES}/iris", unhealthy)
    result = runner.invoke(app, ["node", "get", "iris"])
    assert result.exit_code == 0, result.output
    assert "KEY=***" in result.stdout and "crash loop: ImportError" in result.stdout


def test_errors_are_one_line_on_stderr_with_exit_1_fake_server(
    cli_on_fake_pier: FakePier,
) -> None:
    message = "node 'ghost' not found in project 'default'"
    cli_on_fake_pier.on("GET", f"{NODES}/ghost", error_response(404, "not_found", message))
    result = runner.invoke(app, ["node", "get", "ghost"])
    assert result.exit_code == 1
    assert result.stderr == f"error: {message}\n"
    assert "Traceback" not in result.output


def test_node_create_builds_the_spec_from_options_fake_server(
    cli_on_fake_pier: FakePier,
) -> None:
    cli_on_fake_pier.on("POST", NODES, httpx.Response(201, json={**NODE, "status": "Created"}))
    options = (
        "--image nginx:1.27 --port 80 --health / --min 1 --max 3 --config c1.4 --env A=1 "
        "--env B=x=y --secret-env KEY=v --timeout 5 --metrics /metrics --public "
        "--maintenance-limit 2"
    )
    result = runner.invoke(app, ["node", "create", "web", *options.split()])
    assert result.exit_code == 0, result.output
    assert body_of(cli_on_fake_pier.requests[0]) == {
        "name": "web",
        "spec": {
            "image": "nginx:1.27", "port": 80, "health": {"path": "/"}, "min_instances": 1,
            "max_instances": 3, "configuration": "c1.4", "env": {"A": "1", "B": "x=y"},
            "secret_env": {"KEY": "v"}, "timeout_s": 5.0, "telemetry": {"path": "/metrics"},
            "access": "public", "maintenance_limit": 2,
        },
    }  # fmt: skip


def test_node_create_wait_exits_1_with_the_crash_loop_reason_fake_server(
    cli_on_fake_pier: FakePier,
) -> None:
    crashing = {**NODE, "status": "Created", "crash_looping": True,
                "message": "instance exited 3 times: ModuleNotFoundError: x"}  # fmt: skip
    cli_on_fake_pier.on("POST", NODES, httpx.Response(201, json={**NODE, "status": "Created"}))
    cli_on_fake_pier.on("GET", f"{NODES}/iris", crashing)
    cli_on_fake_pier.on("GET", f"{NODES}/iris/instances", {"instances": []})
    cli_on_fake_pier.on("GET", f"{NODES}/iris/events", {"events": []})
    result = runner.invoke(app, ["node", "create", "iris", "--model", "iris:1", "--wait"])
    assert result.exit_code == 1
    assert "crash looping" in result.stderr and "ModuleNotFoundError: x" in result.stderr
    assert body_of(cli_on_fake_pier.requests[0])["spec"] == {"model": "iris", "model_version": 1}


def test_node_update_sends_only_the_env_given_for_the_server_to_merge_fake_server(
    cli_on_fake_pier: FakePier,
) -> None:
    cli_on_fake_pier.on("GET", f"{NODES}/iris", NODE)
    cli_on_fake_pier.on("PATCH", f"{NODES}/iris", {**NODE, "generation": 2})
    result = runner.invoke(app, ["node", "update", "iris", "--env", "B=2", "--max", "4"])
    assert result.exit_code == 0, result.output
    patch = body_of(cli_on_fake_pier.requests[-1])
    assert patch == {"spec": {"max_instances": 4, "env": {"B": "2"}}}  # no read-modify-write
    assert "generation 2" in result.stdout


def test_node_update_sends_a_new_image_model_and_access_fake_server(
    cli_on_fake_pier: FakePier,
) -> None:
    cli_on_fake_pier.on("GET", f"{NODES}/iris", NODE)
    cli_on_fake_pier.on("PATCH", f"{NODES}/iris", NODE)
    argv = ["node", "update", "iris", "--model", "iris", "--image", "reg/ms:2", "--private",
            "--command", "python3 -m pier.modelserver", "--health-interval", "0.5"]  # fmt: skip
    result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert body_of(cli_on_fake_pier.requests[-1]) == {
        "spec": {
            "model": "iris",
            "model_version": None,  # no version: the newest
            "image": "reg/ms:2",
            "access": "private",
            "command": ["python3", "-m", "pier.modelserver"],
            "health": {"interval_s": 0.5},
        }
    }
    assert "applied to the running instances" in result.stdout  # same generation back


def test_call_prints_the_body_or_fails_with_the_error_fake_server(
    cli_on_fake_pier: FakePier, tmp_path: Path
) -> None:
    request = tmp_path / "req.json"
    request.write_text('{"inputs": []}')
    infer = "/default/nodes/iris/v2/models/iris/infer"
    cli_on_fake_pier.on("POST", infer, {"outputs": [1]})
    cli_on_fake_pier.on("GET", "/default/nodes/down/", error_response(503, "no_instance", "down"))
    ok = runner.invoke(app, ["call", "iris", "/v2/models/iris/infer", "--data", f"@{request}"])
    failed = runner.invoke(app, ["call", "down"])
    assert ok.exit_code == 0 and json.loads(ok.stdout) == {"outputs": [1]}
    sent = cli_on_fake_pier.requests[0]
    assert sent.headers["content-type"] == "application/json"
    assert sent.content == b'{"inputs": []}'
    assert failed.exit_code == 1 and failed.stdout == ""
    assert failed.stderr == "error: down\n"


@pytest.mark.parametrize(
    "answer",
    [
        error_response(404, "not_found", "node 'irs' not found in project 'default'"),
        httpx.Response(404, json={"error": "node 'irs' not found in project 'default'"}),
        httpx.Response(
            404,
            json={
                "error": "node 'irs' not found in project 'default'",
                "code": "not_found",
                "type": "not_found",
                "project": "default",
                "node": "irs",
            },
        ),
    ],
    ids=["pier-error-object", "v2-error-string", "gateway-v2-error-with-details"],
)
def test_call_prints_a_json_error_as_one_error_line_fake_server(
    cli_on_fake_pier: FakePier, answer: httpx.Response
) -> None:
    cli_on_fake_pier.on("GET", "/default/nodes/irs/", answer)
    result = runner.invoke(app, ["call", "irs"])
    assert result.exit_code == 1
    assert result.stderr == "error: node 'irs' not found in project 'default'\n"
    assert result.stdout == ""


def test_call_prints_an_error_body_that_is_not_json_as_it_is_fake_server(
    cli_on_fake_pier: FakePier,
) -> None:
    cli_on_fake_pier.on("GET", "/default/nodes/web/", httpx.Response(500, text="boom"))
    result = runner.invoke(app, ["call", "web"])
    assert result.exit_code == 1 and result.stderr == "boom\n"


def test_progress_line_counts_instances_by_status() -> None:
    statuses = ("Preparing", "Healthy", "Preparing")
    instances = [InstanceView.model_validate(instance_json(status=s)) for s in statuses]
    created = NodeView.model_validate(node_json(status="Created"))
    line = describe_progress(created, instances)
    assert line == "iris: Created — instances: 1 Healthy, 2 Preparing"
    assert describe_progress(created, []).endswith("none yet")


def test_progress_line_says_how_far_a_rollout_is_and_when_the_gateway_lags() -> None:
    node = node_json(name="web", status="Healthy", generation=2, routed=True)
    instances = [
        InstanceView.model_validate(instance_json(status=status, generation=generation))
        for status, generation in (("Healthy", 1), ("Healthy", 2), ("Preparing", 2))
    ]
    line = describe_progress(NodeView.model_validate(node), instances)
    assert line == (
        "web: Healthy — instances: 2 Healthy, 1 Preparing — 1 of 3 still on an older spec"
    )
    unrouted = describe_progress(NodeView.model_validate({**node, "routed": False}), instances[1:])
    assert unrouted.endswith("— waiting for the gateway to route it")


def test_sizes_and_ages_read_like_a_person_wrote_them() -> None:
    now = datetime(2025, 1, 1, 12, tzinfo=UTC)
    assert human_bytes(512) == "512 B" and human_bytes(3 * 2**20 // 2) == "1.5 MiB"
    assert age((now - timedelta(seconds=42)).isoformat(), now=now) == "42s"
    assert age((now - timedelta(hours=5)).isoformat(), now=now) == "5h"
