"""`pier node create/update` options come from the spec's fields (one table, SPEC_FLAGS):
their help is the field's description, and errors name the flag the user typed."""

from __future__ import annotations

import httpx
import pytest
from typer.testing import CliRunner

from pier.cli.main import app
from pier.cli.node_options import SPEC_FLAGS, flag_of, spec_field, spec_help
from tests.cli.conftest import FakePier, body_of, error_response, node_json

runner = CliRunner()
NODES = "/api/v1/projects/default/nodes"


@pytest.mark.parametrize(("field", "message", "says"), [
    ("max_instances", "max_instances: max_instances (2) is below min_instances (3)",
     "--max (2) is below --min (3)"),
    ("health.path", "health.path: an HTTP health path must start with '/'",
     "--health: an HTTP health path must start with '/'"),
    ("configuration", "configuration: unknown configuration 'x9'; choose one of c1.2, c1.4",
     "--config: unknown configuration 'x9'; choose one of c1.2, c1.4"),
    ("health.interval_s", "health.interval_s: Input should be greater than 0",
     "--health-interval: Input should be greater than 0"),
])  # fmt: skip
def test_create_errors_name_the_flag_not_the_field_fake_server(
    cli_on_fake_pier: FakePier, field: str, message: str, says: str
) -> None:
    answer = error_response(422, "invalid_spec", message, field=field, type="invalid_spec")
    cli_on_fake_pier.on("POST", NODES, answer)
    result = runner.invoke(app, ["node", "create", "iris", "--model", "iris", "--min", "3"])
    assert result.exit_code == 1
    assert result.stderr == f"error: {says}\n"


def test_update_errors_name_the_flag_fake_server(cli_on_fake_pier: FakePier) -> None:
    cli_on_fake_pier.on("GET", f"{NODES}/iris", node_json())
    message = "min_instances: Input should be less than or equal to 1000"
    answer = error_response(422, "invalid_spec", message, field="min_instances")
    cli_on_fake_pier.on("PATCH", f"{NODES}/iris", answer)
    result = runner.invoke(app, ["node", "update", "iris", "--min", "5000"])
    assert result.stderr == "error: --min: Input should be less than or equal to 1000\n"


def test_errors_about_other_fields_are_left_as_they_are_fake_server(
    cli_on_fake_pier: FakePier,
) -> None:
    message = "name: 'Bad_Name' is not a valid name"
    cli_on_fake_pier.on("POST", NODES, error_response(422, "invalid_spec", message, field="name"))
    result = runner.invoke(app, ["node", "create", "Bad_Name", "--model", "iris"])
    assert result.stderr == f"error: {message}\n"


OPTION_FIELDS = sorted({s.flag: f for f, s in reversed(SPEC_FLAGS.items())}.values())
"""The field each option is declared from (--model also sets model_version)."""


@pytest.mark.parametrize("field", OPTION_FIELDS)
def test_each_flag_is_a_spec_field_and_its_help_is_the_fields_description(field: str) -> None:
    description = spec_field(field).description
    assert description, f"{field} has no description in NodeSpec"
    result = runner.invoke(app, ["node", "update", "--help"], env={"COLUMNS": "400"})
    assert flag_of(field) in result.stdout
    first_words = " ".join(spec_help(field).split()[:4])
    assert first_words in " ".join(result.stdout.split()), (field, first_words)


def test_max_body_bytes_is_sent_as_the_nodes_limit_fake_server(cli_on_fake_pier: FakePier) -> None:
    cli_on_fake_pier.on("POST", NODES, httpx.Response(201, json=node_json()))
    argv = ["node", "create", "iris", "--model", "iris", "--max-body-bytes", "65536"]
    assert runner.invoke(app, argv).exit_code == 0
    assert body_of(cli_on_fake_pier.requests[0])["spec"] == {
        "model": "iris",
        "max_body_bytes": 65536,
    }
