"""What the web UI and the time-series sampling cost serving: the MLP node of
``modelnode.py`` through the gateway, with and without a browser on its node page.

One `pier up` (sampling at its default period) on CPU 0 with everything it starts; wrk
on CPU 1 POSTs V2 inference requests through the gateway. In "ui" rounds a headless
chromium (Debian's, driven by Playwright, on CPU 1 as a user's browser is off the
server) holds the node page open, signed in, polling at the UI's default periods
(statuses, instances, events and followed logs every ``ui.poll_s``, six charts every
``ui.chart_poll_s``); in "bare" rounds no browser is open. Rounds alternate which goes
first; the table gives medians, the control plane's CPU seconds per second of load, and
the ratio of requests/s with the UI to without it (the target: 0.95 or more).

    python bench/ui_cost.py [--duration 10] [--rounds 3] [--connections 32] [--quick]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import sys
import tempfile
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, expect, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _wrk import WrkResult, cpu_seconds, require_tools, run_wrk
from modelnode import infer_body, lua_script, mlp_model, start_pier
from pier.client import Client

CHROMIUM = Path("/usr/bin/chromium")
CLIENT_CPU = 1
NODE = "mlp"


@dataclass(frozen=True)
class Run:
    round: int
    arm: str
    result: WrkResult
    control_plane_cpu_s: float
    """CPU seconds the `pier up` process (control plane, sampler, UI) spent per second."""


class OpenNodePage(AbstractContextManager["OpenNodePage"]):
    """A signed-in browser context showing the node page until the block ends."""

    def __init__(self, browser: Browser, url: str, token: str) -> None:
        self._browser, self._url, self._token = browser, url, token
        self._context: BrowserContext | None = None

    def __enter__(self) -> OpenNodePage:
        context = self._context = self._browser.new_context(
            base_url=self._url, viewport={"width": 1280, "height": 900}
        )
        context.add_cookies([{"name": "pier_session", "value": self._token, "url": self._url}])
        page = context.new_page()
        page.goto(f"/projects/default/nodes/{NODE}")
        expect(page.locator("#node-status")).to_have_text("Healthy", timeout=30_000)
        charted = page.locator("figure[data-chart=requests]")
        expect(charted).to_have_attribute("data-points", re.compile(r"^\d+$"))  # polled once
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._context is not None
        self._context.close()


def one_run(
    index: int, arm: str, page: AbstractContextManager[object], pier_pid: int, url: str,
    script: Path, args: argparse.Namespace,
) -> Run:  # fmt: skip
    with page:
        before = cpu_seconds(pier_pid)
        result = run_wrk(url, connections=args.connections, duration_s=args.duration,
                         cpu=CLIENT_CPU, script=script)  # fmt: skip
        spent = cpu_seconds(pier_pid) - before
    return Run(index, arm, result, spent / args.duration)


def rounds(
    browser: Browser, pier_pid: int, ui_url: str, token: str, url: str, script: Path,
    args: argparse.Namespace,
) -> list[Run]:  # fmt: skip
    runs = []
    for index in range(args.rounds):
        arms = {"bare": nullcontext(), "ui": OpenNodePage(browser, ui_url, token)}
        order = ("bare", "ui") if index % 2 == 0 else ("ui", "bare")
        for arm in order:
            runs.append(one_run(index, arm, arms[arm], pier_pid, url, script, args))
            print(f"round {index + 1} {arm}: {runs[-1].result.requests_per_s:.0f} req/s",
                  file=sys.stderr)  # fmt: skip
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="bare/ui pairs")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--quick", action="store_true", help="3 s runs, 2 rounds")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.rounds = 3.0, 2
    require_tools("wrk", "taskset")
    if not CHROMIUM.exists():
        sys.exit("chromium is missing: scripts/install-system-packages.sh test installs it")
    with tempfile.TemporaryDirectory(prefix="pier-bench-") as tmp:
        tmp_path = Path(tmp)
        data_dir = tmp_path / "data"
        proc, port, gateway_port = start_pier(data_dir)
        try:
            token = (data_dir / "admin.token").read_text().strip()
            ui_url = f"http://127.0.0.1:{port}"
            with Client(url=ui_url, token=token) as client:
                blob, row = mlp_model()
                (tmp_path / "mlp.onnx").write_bytes(blob)
                client.push_model(tmp_path / "mlp.onnx", NODE)
                client.create_node(NODE, model=NODE, min_instances=1)
                client.wait_node(NODE, timeout_s=120)
            script = lua_script(tmp_path / "mlp.lua", infer_body(row), token)
            url = f"http://127.0.0.1:{gateway_port}/default/nodes/{NODE}/v2/models/{NODE}/infer"
            run_wrk(url, connections=args.connections, duration_s=1.0, cpu=CLIENT_CPU,
                    script=script)  # warm-up  # fmt: skip
            os.sched_setaffinity(0, {CLIENT_CPU})  # the browser inherits it
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=str(CHROMIUM), args=["--no-sandbox"]
                )
                runs = rounds(browser, proc.pid, ui_url, token, url, script, args)
                browser.close()
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(60)
    print_table(runs, args)


def print_table(runs: list[Run], args: argparse.Namespace) -> None:
    print(
        f"\nMLP node through the gateway, {args.connections} connections, {args.rounds} "
        f"rounds of {args.duration:g} s per arm, interleaved; pier on CPU 0, wrk and "
        f"chromium on CPU {CLIENT_CPU}"
    )
    header = (
        f"{'arm':5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'cp cpu s/s':>10} "
        f"{'errors':>6}  runs (req/s)"
    )
    print(header)
    print("-" * len(header))
    medians = {}
    for arm in ("bare", "ui"):
        mine = [r for r in runs if r.arm == arm]
        rps = statistics.median(r.result.requests_per_s for r in mine)
        medians[arm] = rps
        print(
            f"{arm:5} {rps:>9.0f} {statistics.median(r.result.p50_ms for r in mine):>8.3f} "
            f"{statistics.median(r.result.p99_ms for r in mine):>8.3f} "
            f"{statistics.median(r.control_plane_cpu_s for r in mine):>10.3f} "
            f"{sum(r.result.errors for r in mine):>6}  "
            + " ".join(f"{r.result.requests_per_s:.0f}" for r in mine)
        )
    ratio = medians["ui"] / medians["bare"]
    pairs = {r.round: {} for r in runs}
    for r in runs:
        pairs[r.round][r.arm] = r.result.requests_per_s
    by_round = [p["ui"] / p["bare"] for p in pairs.values()]
    verdict = "within" if ratio >= 0.95 else "NOT within"
    print(f"\nui / bare requests/s, medians: {ratio:.3f} ({verdict} 5%); per round: "
          + " ".join(f"{x:.2f}" for x in by_round)
          + f" (median {statistics.median(by_round):.3f})")  # fmt: skip


if __name__ == "__main__":
    main()
