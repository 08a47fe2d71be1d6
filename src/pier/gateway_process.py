"""The gateway as a child process of `pier up`: spawned, adopted after a restart, stopped.

The gateway runs in its own session so that it outlives a killed control plane and goes
on serving its last routes; the next `pier up` finds it through its pid file. Its files
(pid file, routes, log) are in the `pier up`'s process dir (Settings.process_dir): each
`pier up` sharing a data dir has a gateway of its own. It is a gateway like any
`pier gateway`: it reports to its control plane's registry under the id kept beside its
routes file, and counts as one of them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import psutil

from pier.domain.errors import RuntimeUnavailable
from pier.settings import Settings


class GatewayProcess:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._pid_file = settings.process_dir / "gateway.json"
        self._log_path = settings.process_dir / "logs" / "gateway.log"
        self._proc: psutil.Process | None = None
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        gw = self._settings.gateway
        return f"http://{gw.host}:{gw.port}"

    def ensure_running(self) -> bool:
        """Adopt a gateway left by an earlier `pier up`, else start one; True if adopted."""
        adopted = self._adopt()
        if adopted is not None:
            self._proc = adopted
            return True
        self._start()
        return False

    def _adopt(self) -> psutil.Process | None:
        try:
            state = json.loads(self._pid_file.read_text())
            proc = psutil.Process(state["pid"])
            if proc.create_time() != state["create_time"] or state["port"] != (
                self._settings.gateway.port
            ):
                return None
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except (OSError, ValueError, KeyError, psutil.Error):
            return None

    def _start(self) -> None:
        gw = self._settings.gateway
        data = self._settings.data_dir.resolve()
        argv = [
            sys.executable, "-m", "pier.gateway",
            "--host", gw.host, "--port", str(gw.port),
            "--control-url", self._settings.api_url,
            "--token-file", str(data / "admin.token"),
            "--routes-file", str(self._settings.process_dir.resolve() / "gateway-routes.json"),
            "--max-body-bytes", str(gw.max_body_bytes),
            "--workers", str(gw.workers),
            "--max-request-line-bytes", str(gw.max_request_line_bytes),
            "--max-header-bytes", str(gw.max_header_bytes),
            "--max-headers", str(gw.max_headers),
            "--header-timeout-s", str(gw.header_timeout_s),
            "--body-timeout-s", str(gw.body_timeout_s),
            "--max-pipelined-bytes", str(gw.max_pipelined_bytes),
            "--max-connections", str(gw.max_connections),
            "--max-sticky-sessions", str(gw.max_sticky_sessions),
            "--mirror-queue-size", str(gw.mirror_queue_size),
            "--mirror-max-in-flight", str(gw.mirror_max_in_flight),
            "--mirror-max-bytes", str(gw.mirror_max_bytes),
            "--mirror-max-body-bytes", str(gw.mirror_max_body_bytes),
            "--mirror-timeout-s", str(gw.mirror_timeout_s),
            "--mirror-tolerance", str(gw.mirror_tolerance),
            "--mirror-batch-wait-s", str(gw.mirror_batch_wait_s),
        ]  # fmt: skip
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        with self._log_path.open("ab") as log:
            self._popen = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        self._proc = psutil.Process(self._popen.pid)
        tmp = self._pid_file.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {"pid": self._popen.pid, "port": gw.port, "create_time": self._proc.create_time()}
            )
        )
        os.replace(tmp, self._pid_file)
        self._wait_ready()

    def _wait_ready(self, timeout_s: float = 15.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._popen is not None and self._popen.poll() is not None:
                tail = self._log_path.read_text(errors="replace").strip().splitlines()[-5:]
                raise RuntimeUnavailable(
                    f"the gateway exited at start (is port {self._settings.gateway.port} in "
                    f"use?); last lines of {self._log_path}:\n" + "\n".join(tail)
                )
            try:
                if httpx.get(self.url + "/healthz", timeout=0.5, trust_env=False).is_success:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeUnavailable(f"the gateway did not answer on {self.url} within {timeout_s} s")

    def is_running(self) -> bool:
        if self._proc is None:
            return False
        try:
            return bool(self._proc.is_running() and self._proc.status() != psutil.STATUS_ZOMBIE)
        except psutil.Error:
            return False

    def restart_if_dead(self) -> bool:
        if self.is_running():
            return False
        self._start()
        return True

    def stop(self, grace_s: float = 5.0) -> None:
        if self._proc is None:
            return
        try:
            os.killpg(self._proc.pid, signal.SIGTERM)
            self._proc.wait(grace_s)
        except psutil.TimeoutExpired:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except (OSError, psutil.Error):
            pass
        if self._popen is not None:
            self._popen.poll()
        self._pid_file.unlink(missing_ok=True)
        self._proc = None
