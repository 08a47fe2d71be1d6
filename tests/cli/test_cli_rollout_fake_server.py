"""`pier alias rollout` sends the plan it was given (percents, a duration, a rate), names
the flag of a value it cannot read, and shows the state; `--abort` rolls back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from typer.testing import CliRunner

from pier.cli.main import app
from pier.domain.records import RolloutRecord
from pier.domain.rollouts import parse_rollout_plan, start_rollout
from pier.services.views import rollout_view
from tests.cli.conftest import FakePier, body_of

runner = CliRunner()
ROLLOUT = "/api/v1/projects/default/aliases/prod/rollout"


def rollout_json(**plan: Any) -> dict[str, Any]:
    parsed = parse_rollout_plan({"to_node": "v2", "steps": [10, 100], "bake_s": 2,
                                 "max_error_rate": 0.01, **plan})  # fmt: skip
    state = start_rollout(parsed, (("v1", 100),), now=1e9)
    record = RolloutRecord("default", "prod", state, datetime.now(UTC))
    return rollout_view(record).model_dump(mode="json")


def test_rollout_sends_the_plan_and_shows_the_step_fake_server(
    cli_on_fake_pier: FakePier,
) -> None:
    cli_on_fake_pier.on("POST", ROLLOUT, rollout_json(max_p95_ms=200))
    result = runner.invoke(app, [
        "alias", "rollout", "prod", "--to", "v2", "--steps", "10,100", "--bake", "2s",
        "--max-error-rate", "1%", "--max-p95-ms", "200",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    (request,) = cli_on_fake_pier.requests
    assert body_of(request) == {"to_node": "v2", "steps": [10, 100], "bake_s": 2.0,
                                "max_error_rate": 0.01, "max_p95_ms": 200.0}  # fmt: skip
    assert "to v2: running" in result.stdout and "1 of 2 (10%)" in result.stdout
    assert "v1=90, v2=10" in result.stdout


def test_rollout_sends_the_requests_a_step_needs_fake_server(
    cli_on_fake_pier: FakePier,
) -> None:
    cli_on_fake_pier.on("POST", ROLLOUT, rollout_json(min_requests=500))
    result = runner.invoke(app, [
        "alias", "rollout", "prod", "--to", "v2", "--steps", "10,100", "--min-requests", "500",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    (request,) = cli_on_fake_pier.requests
    assert body_of(request)["min_requests"] == 500
    assert "at least 500 requests a step" in result.stdout


def test_rollout_refuses_a_step_of_no_requests_fake_server(cli_on_fake_pier: FakePier) -> None:
    result = runner.invoke(app, ["alias", "rollout", "prod", "--to", "v2", "--min-requests", "0"])
    assert result.exit_code == 2
    assert "--min-requests" in result.stderr
    assert cli_on_fake_pier.requests == []


def test_rollout_names_the_flag_it_cannot_read_fake_server(cli_on_fake_pier: FakePier) -> None:
    result = runner.invoke(app, ["alias", "rollout", "prod", "--to", "v2", "--bake", "soon"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: --bake: 'soon' is not a duration")
    assert cli_on_fake_pier.requests == []


def test_abort_asks_for_a_roll_back_fake_server(cli_on_fake_pier: FakePier) -> None:
    cli_on_fake_pier.on("POST", f"{ROLLOUT}/abort", rollout_json())
    result = runner.invoke(app, ["alias", "rollout", "prod", "--abort", "--output", "json"])
    assert result.exit_code == 0, result.output
    assert [r.url.path for r in cli_on_fake_pier.requests] == [f"{ROLLOUT}/abort"]
