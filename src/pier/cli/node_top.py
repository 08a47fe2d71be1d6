"""`pier node top NAME`: a node's live figures from pier's own series, refreshed in the
terminal until Ctrl-C (``--once``: printed once, for scripts)."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.live import Live
from rich.table import Table

from pier.cli.context import OutputOpt, ProjectOpt, cli_state
from pier.cli.node_options import NameArg
from pier.cli.output import print_json, stdout, stopped_by_ctrl_c
from pier.client import Client
from pier.domain.views import SeriesMetric, SeriesView

NODE_METRICS = (
    SeriesMetric.REQUESTS_PER_S,
    SeriesMetric.P50,
    SeriesMetric.P95,
    SeriesMetric.P99,
    SeriesMetric.ERROR_RATE,
    SeriesMetric.IN_FLIGHT,
)
INSTANCE_METRICS = (SeriesMetric.CPU_PERCENT, SeriesMetric.MEMORY_BYTES)
WINDOW_S = 60.0
"""The newest point with a value within this long is shown."""

Figures = dict[str, dict[str, float | None]]
"""Per row ("node" or an instance id), metric name -> newest value."""


def top(
    ctx: typer.Context,
    name: NameArg,
    once: Annotated[bool, typer.Option("--once", help="Print once and exit.")] = False,
    interval: Annotated[
        float, typer.Option(min=0.5, help="Seconds between refreshes.", show_default=True)
    ] = 2.0,
    output: OutputOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Show a node's live requests/s, p50/p95/p99 latency, error rate, requests in flight
    and its instances' CPU and memory, refreshed until Ctrl-C."""
    state = cli_state(ctx, output=output, project=project)
    client = state.client()
    if once:
        figures = read_figures(client, name)
        if state.is_json:
            print_json(figures)
        else:
            stdout.print(render(name, figures))
        return
    with (
        stopped_by_ctrl_c(),
        Live(render(name, read_figures(client, name)), console=stdout) as live,
    ):
        while True:
            time.sleep(interval)
            live.update(render(name, read_figures(client, name)))


def read_figures(client: Client, name: str) -> Figures:
    # The Healthy count is the node's own, now: a series point averages its samples, and
    # one taken while an instance started would show a fraction of an instance.
    figures: Figures = {"node": {"instances_healthy": client.get_node(name).instances.healthy}}
    for metric in (*NODE_METRICS, *INSTANCE_METRICS):
        for row, value in _newest(client.series(name, metric, since=WINDOW_S)).items():
            figures.setdefault(row, {})[metric.value] = value
    return figures


def _newest(view: SeriesView) -> dict[str, float | None]:
    newest: dict[str, float | None] = {}
    for line in view.series:
        values = [p.value for p in line.points if p.value is not None]
        newest[line.instance or "node"] = values[-1] if values else None
    return newest


def render(name: str, figures: Figures) -> Table:
    table = Table(title=f"node {name}", box=None, header_style="bold", title_justify="left")
    for header in ("", "REQ/S", "P50 ms", "P95 ms", "P99 ms", "ERRORS %", "IN FLIGHT",
                   "HEALTHY", "CPU %", "MEMORY MiB"):  # fmt: skip
        table.add_column(header, justify="right" if header else "left")
    for row, values in figures.items():
        table.add_row(
            row,
            _number(values.get("requests_per_s"), "{:.1f}"),
            *(_number(values.get(q), "{:.1f}", 1000.0) for q in ("p50", "p95", "p99")),
            _number(values.get("error_rate"), "{:.1f}", 100.0),
            _number(values.get("in_flight"), "{:.1f}"),
            _number(values.get("instances_healthy"), "{:.0f}"),
            _number(values.get("cpu_percent"), "{:.1f}"),
            _number(values.get("memory_bytes"), "{:.1f}", 1 / 2**20),
        )
    return table


def _number(value: float | None, fmt: str, scale: float = 1.0) -> str:
    return "-" if value is None else fmt.format(value * scale)
