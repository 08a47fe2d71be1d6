"""A steady stream of requests through the gateway, to check that nothing fails while
pier changes a node underneath it."""

from __future__ import annotations

import threading

import httpx

from tests.conftest import PierProcess


class Load:
    """``clients`` threads, each sending one slow request after another until stopped.
    ``new_connections``: one connection per request, so that with several gateway workers
    the kernel spreads the requests over all of them."""

    def __init__(
        self, pier: PierProcess, clients: int, path: str, *, new_connections: bool = False
    ) -> None:
        self._stop = threading.Event()
        self._headers = {"Connection": "close"} if new_connections else {}
        self.statuses: list[int] = []
        self._threads = [
            threading.Thread(target=self._run, args=(pier, path), daemon=True)
            for _ in range(clients)
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _run(self, pier: PierProcess, path: str) -> None:
        auth = {"Authorization": f"Bearer {pier.token}", **self._headers}
        with httpx.Client(
            base_url=pier.gateway_url, headers=auth, timeout=30, trust_env=False
        ) as c:
            while not self._stop.is_set():
                self.statuses.append(c.get(path).status_code)
