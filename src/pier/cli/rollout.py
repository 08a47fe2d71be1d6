"""`pier alias rollout`: move an alias's traffic to a new node step by step, guarded by
its error rate and p95 latency; `--abort` rolls back now; without `--to`, the state."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated

import typer

from pier.cli.context import OutputOpt, ProjectOpt, cli_state
from pier.cli.output import print_fields, print_json, stderr
from pier.domain.aliases import AliasShare
from pier.domain.errors import InvalidSpec
from pier.domain.rollouts import StepFigures
from pier.domain.views import RolloutView

DURATION = re.compile(r"(?P<value>[0-9]+(?:\.[0-9]+)?)(?P<unit>ms|s|m|h)?")
UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_steps(text: str) -> list[int]:
    """``10,50,100`` -> [10, 50, 100]."""
    try:
        return [int(part.strip().removesuffix("%")) for part in text.split(",")]
    except ValueError:
        raise InvalidSpec("--steps", f"{text!r} is not percents like 10,50,100") from None


def parse_duration_s(text: str, option: str) -> float:
    """``60s``, ``2m``, ``500ms``, ``1h`` or plain seconds."""
    match = DURATION.fullmatch(text.strip())
    if match is None:
        raise InvalidSpec(option, f"{text!r} is not a duration like 60s, 2m or 500ms")
    return float(match["value"]) * UNIT_S[match["unit"] or "s"]


def parse_rate(text: str, option: str) -> float:
    """``1%`` -> 0.01; a plain number is a fraction (``0.01``)."""
    try:
        if text.strip().endswith("%"):
            return float(text.strip()[:-1]) / 100
        return float(text)
    except ValueError:
        raise InvalidSpec(option, f"{text!r} is not a rate like 1% or 0.01") from None


def rollout(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The alias.", show_default=False)],
    to: Annotated[str | None, typer.Option("--to", help="The node to move the traffic to.")] = None,
    steps: Annotated[
        str, typer.Option("--steps", help="Percent of the traffic at each step.")
    ] = "10,50,100",
    bake: Annotated[
        str, typer.Option("--bake", help="How long each step is held and watched (60s, 2m).")
    ] = "60s",
    max_error_rate: Annotated[
        str,
        typer.Option("--max-error-rate", help="Most of the new node's requests that may fail."),
    ] = "1%",
    max_p95_ms: Annotated[
        float | None,
        typer.Option(
            "--max-p95-ms", min=0, help="Slowest p95 latency allowed (not checked if not given)."
        ),
    ] = None,
    min_requests: Annotated[
        int | None,
        typer.Option(
            "--min-requests",
            min=1,
            max=1_000_000,
            help="Requests a step must see to pass, and before a limit rolls back early (20).",
            show_default=False,
        ),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Show each decision until the rollout ends.")
    ] = False,
    abort: Annotated[
        bool, typer.Option("--abort", help="Roll the running rollout back now.")
    ] = False,
    output: OutputOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Roll an alias out to a node step by step; it rolls back by itself on a limit."""
    state = cli_state(ctx, output=output, project=project)
    client = state.client()
    if abort:
        view = client.abort_rollout(name)
    elif to is not None:
        given = {} if min_requests is None else {"min_requests": min_requests}
        view = client.start_rollout(
            name, to_node=to, steps=parse_steps(steps), bake_s=parse_duration_s(bake, "--bake"),
            max_error_rate=parse_rate(max_error_rate, "--max-error-rate"), max_p95_ms=max_p95_ms,
            **given,
        )  # fmt: skip
    else:
        view = client.get_rollout(name)
    if wait:
        seen = [view.why]
        stderr.print(view.why, markup=False)

        def on_progress(progress: RolloutView) -> None:
            if progress.why != seen[-1]:
                seen.append(progress.why)
                stderr.print(progress.why, markup=False)

        view = client.wait_rollout(name, on_progress=on_progress)
    if state.is_json:
        print_json(view)
    else:
        print_fields(rollout_fields(view))
    if wait and view.phase != "completed":
        raise typer.Exit(1)


def rollout_fields(view: RolloutView) -> list[tuple[str, object]]:
    """What `pier alias rollout` and `pier alias get` show of a rollout."""
    plan = view.plan
    limits = f"error rate {plan.max_error_rate:.2%}"
    if plan.max_p95_ms is not None:
        limits += f", p95 {plan.max_p95_ms:g} ms"
    limits += f", at least {plan.min_requests} requests a step"
    return [
        ("rollout", f"to {plan.to_node}: {view.phase}"),
        ("step", f"{view.step} of {len(plan.steps)} ({view.percent}%), bake {plan.bake_s:g}s"),
        ("limits", limits),
        ("figures", describe_figures(view.figures)),
        ("shares", _shares(view.shares)),
        ("before", _shares(view.previous)),
        ("decision", f"{view.action}: {view.why}"),
    ]


def describe_figures(figures: StepFigures) -> str:
    p95 = "-" if figures.p95_ms is None else f"{figures.p95_ms:.0f} ms"
    return (
        f"{figures.requests} requests, {figures.errors} errors "
        f"({figures.error_rate:.2%}), p95 {p95}"
    )


def _shares(shares: Sequence[AliasShare]) -> str:
    return ", ".join(f"{s.node}={s.share}" for s in shares)
