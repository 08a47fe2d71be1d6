"""Shared fixtures: free ports, a tiny ONNX model, and `pier up` as a real process."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import pytest
from sqlalchemy import Engine

from pier.sandbox import default_root
from pier.store.database import create_store_engine, migrate
from pier.store.repository import Repository
from tests.postgres import PostgresServer, shared_postgres

STORES = ["sqlite", "postgresql"]
"""The stores pier supports: every test that takes ``store_engine`` or ``repo`` runs on
each of them (``tests/store`` is their contract)."""

TEST_STORE = os.environ.get("PIER_TEST_STORE", "sqlite")
"""The store of the `pier up` processes the tests start: ``sqlite`` (the embedded default:
a file in the data dir) or ``postgresql`` (a database of its own on the test cluster, for
each pier; ``make test-postgres`` runs the end-to-end tests so)."""
if TEST_STORE not in STORES:
    raise pytest.UsageError(f"PIER_TEST_STORE must be one of {STORES}, not {TEST_STORE!r}")
_DATABASES: dict[Path, str] = {}
"""With PIER_TEST_STORE=postgresql: the database of each data dir a pier was started on."""
sqlite_only = pytest.mark.skipif(
    TEST_STORE != "sqlite", reason="about the SQLite file of the embedded store"
)

UI_SCREENSHOTS = Path(__file__).resolve().parent.parent / ".test-artifacts" / "ui-screenshots"
"""Where the web UI's browser tests keep screenshots of the main pages (kept after a run)."""
_SESSION_STARTED = time.time()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Name the screenshots' folder at the end of a run that made them (with xdist too:
    this runs in the process that reports, not in a worker)."""
    made_now = UI_SCREENSHOTS.is_dir() and UI_SCREENSHOTS.stat().st_mtime >= _SESSION_STARTED
    if made_now and any(UI_SCREENSHOTS.iterdir()):
        terminalreporter.write_line(f"web UI screenshots: {UI_SCREENSHOTS}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class IrisModel:
    path: Path
    features: np.ndarray
    labels: np.ndarray
    probabilities: np.ndarray

    def infer_request(self, row: int = 0) -> dict[str, Any]:
        """A V2 JSON inference request for one row of the features (input ``X``)."""
        data = self.features[row].tolist()
        return {"inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP32", "data": data}]}


@pytest.fixture(scope="session")
def iris_onnx(tmp_path_factory: pytest.TempPathFactory) -> IrisModel:
    """A logistic regression on iris, exported to ONNX with plain tensor outputs."""
    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    x = x.astype(np.float32)
    clf = LogisticRegression(max_iter=500).fit(x, y)
    onnx_model = to_onnx(clf, x[:1], options={id(clf): {"zipmap": False}}, target_opset=17)
    path = tmp_path_factory.mktemp("models") / "iris.onnx"
    path.write_bytes(onnx_model.SerializeToString())
    return IrisModel(path, x, clf.predict(x), clf.predict_proba(x))


@dataclass
class PierProcess:
    """A real `pier up` on free ports in its own data dir."""

    data_dir: Path
    port: int
    gateway_port: int
    proc: subprocess.Popen[bytes] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    """Settings for `pier up` (e.g. PIER_CONTROLLER__SCALE_DOWN_DELAY_S)."""
    extra_args: list[str] = field(default_factory=list)
    """Options for `pier up` after the ports and data dir (e.g. ``--database-url``)."""
    log_path: Path = field(init=False)
    reader: subprocess.Popen[bytes] | None = None
    """The process `pier up`'s output is piped through, if any (``start(pipe_through=)``)."""
    _started_at_byte: int = 0

    def __post_init__(self) -> None:
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-pier-up.log"
        chosen = "PIER_DATABASE_URL" in self.extra_env or "--database-url" in self.extra_args
        if TEST_STORE == "postgresql" and not chosen:
            # in the environment, so that the CLI's local commands find the store too (a
            # copy: the dict given may be a module's, shared by several pier processes);
            # one database per data dir, as a pier started again there finds its store
            url = _DATABASES.get(self.data_dir) or shared_postgres().database()
            _DATABASES[self.data_dir] = url
            self.extra_env = {**self.extra_env, "PIER_DATABASE_URL": url}

    def output(self) -> str:
        """What `pier up` wrote (stdout and stderr) since its latest start."""
        return self.log_path.read_bytes()[self._started_at_byte :].decode(errors="replace")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def token(self) -> str:
        return (self.data_dir / "admin.token").read_text().strip()

    @property
    def env(self) -> dict[str, str]:
        """Environment for the CLI: URL, data dir (for the token), no proxies."""
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env.update(PIER_URL=self.url, PIER_DATA_DIR=str(self.data_dir), **self.extra_env)
        env.pop("PIER_TOKEN", None)
        return env

    def start(self, timeout_s: float = 60.0, *, pipe_through: Sequence[str] = ()) -> None:
        """Start `pier up` and wait until it is up; with ``pipe_through`` (e.g. ``["cat"]``)
        its output goes through a pipe to that command, as in ``pier up | tee log``."""
        argv = [
            sys.executable,
            "-m",
            "pier",
            "up",
            "--port",
            str(self.port),
            "--gateway-port",
            str(self.gateway_port),
            "--data-dir",
            str(self.data_dir),
            *self.extra_args,
        ]
        seen_bytes = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._started_at_byte = seen_bytes
        with self.log_path.open("ab") as log:
            if pipe_through:
                self.proc = subprocess.Popen(
                    argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=self.env,
                    start_new_session=True,
                )  # fmt: skip
                assert self.proc.stdout is not None
                self.reader = subprocess.Popen(pipe_through, stdin=self.proc.stdout, stdout=log)
                self.proc.stdout.close()  # the reader holds the only read end
            else:
                self.proc = subprocess.Popen(
                    argv, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                    start_new_session=True,
                )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"pier up exited:\n{self.log_path.read_text()}")
            if b"pier is up" in self.log_path.read_bytes()[seen_bytes:]:
                return
            time.sleep(0.05)
        self.proc.kill()  # a start that fails leaves nothing running (its gateway neither)
        self.proc.wait()
        _kill_leftovers(self.data_dir)
        raise AssertionError(f"pier up did not start:\n{self.log_path.read_text()}")

    def stop(self, sig: int = signal.SIGINT, timeout_s: float = 30.0) -> None:
        """Stop `pier up` (SIGINT is Ctrl-C); SIGKILL leaves instances running."""
        if self.proc is None:
            return
        self.proc.send_signal(sig)
        self.proc.wait(timeout_s)
        self.proc = None
        if self.reader is not None:
            self.reader.wait(timeout_s)
            self.reader = None

    def gateway_pid(self) -> int:
        """The gateway process `pier up` started (or adopted); on a shared store its
        state is in the process dir of its API port (Settings.process_dir)."""
        own = self.data_dir / "processes" / str(self.port) / "gateway.json"
        path = own if own.exists() else self.data_dir / "gateway.json"
        return int(json.loads(path.read_text())["pid"])

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
            trust_env=False,
        )

    def node(self, name: str) -> dict[str, Any]:
        """The node as the API shows it."""
        with self.api() as api:
            node: dict[str, Any] = api.get(f"/api/v1/projects/default/nodes/{name}").json()
            return node

    def serving(self, name: str) -> bool:
        """The node is Healthy and the gateway routes it: a request sent now is served."""
        node = self.node(name)
        return node.get("status") == "Healthy" and bool(node.get("routed"))

    def instances(self, name: str) -> list[dict[str, Any]]:
        with self.api() as api:
            r = api.get(f"/api/v1/projects/default/nodes/{name}/instances")
            items: list[dict[str, Any]] = r.json()["instances"]
            return items

    def events(self, name: str) -> list[dict[str, Any]]:
        with self.api() as api:
            r = api.get(f"/api/v1/projects/default/nodes/{name}/events")
            items: list[dict[str, Any]] = r.json()["events"]
            return items

    def gateway(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.gateway_url,
            timeout=30,
            trust_env=False,
            headers={"Authorization": f"Bearer {self.token}"},
        )

    def cli_argv(self) -> list[str]:
        return [sys.executable, "-m", "pier"]

    def cli(
        self,
        *args: str,
        check: bool = True,
        timeout_s: float = 120.0,
        input: str | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run `pier ARGS` (its output piped); ``env`` is added to the CLI's environment."""
        result = subprocess.run(
            [*self.cli_argv(), *args],
            env={**self.env, **(env or {})},
            input=input,
            text=True,
            capture_output=True,
            timeout=timeout_s,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"pier {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def cli_json(self, *args: str) -> Any:
        """What `pier ARGS --output json` prints."""
        return json.loads(self.cli(*args, "--output", "json").stdout)

    def container_labels(self, node: str) -> list[str]:
        """Label filters for this pier's containers of ``node`` (other pier processes may
        share the Docker engine)."""
        installation = (self.data_dir / "installation.id").read_text().strip()
        return [f"pier.installation={installation}", f"pier.node={node}"]

    def instance_pids(self) -> list[int]:
        """PIDs of instance processes recorded by the local runtime."""
        pids = []
        for state in (self.data_dir / "instances").glob("*.json"):
            pids.append(int(json.loads(state.read_text())["pid"]))
        return pids

    def wait_for(
        self, predicate: Callable[[], Any], *, timeout_s: float = 60.0, what: str = "condition"
    ) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(
            f"timed out waiting for {what}; pier up log:\n{self.log_path.read_text()[-4000:]}"
        )


def _kill_leftovers(data_dir: Path) -> list[str]:
    """Kill whatever a test left running under data_dir, or under its installation's
    sandbox directory (where local instances run from: a `pier up` a test killed leaves
    them for the next one to adopt); return what was found."""
    marks = [str(data_dir)]
    installation = data_dir / "installation.id"
    if installation.exists():
        marks.append(str(default_root() / installation.read_text().strip()))
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if any(mark in cmdline for mark in marks) and proc.pid != os.getpid():
            found.append(cmdline)
            with contextlib.suppress(psutil.Error):
                proc.kill()
    return found


def _stop_and_clean(pier: PierProcess) -> None:
    if pier.proc is not None:
        try:
            pier.stop()
        except subprocess.TimeoutExpired:
            pier.proc.kill()
    _kill_leftovers(pier.data_dir)


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty store of its own: a SQLite file, or a PostgreSQL database."""
    yield from _store(request, tmp_path, migrated=False)


@pytest.fixture(params=STORES)
def store_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a migrated store of its own (PostgreSQL: a copy of a migrated
    template, which the migrations find at the newest revision)."""
    for url in _store(request, tmp_path, migrated=True):
        engine = create_store_engine(url)
        migrate(engine)
        yield engine
        _wait_for_connections_back(engine)
        engine.dispose()


def _wait_for_connections_back(engine: Engine, timeout_s: float = 10.0) -> None:
    """Wait until the store calls still running in threads (a stopped controller's, which
    a cancel does not stop) have given their connections back: disposing the engine (and
    dropping a PostgreSQL database) under them leaves a connection to the garbage collector."""
    pool: Any = engine.pool
    deadline = time.monotonic() + timeout_s
    while pool.checkedout() > 0 and time.monotonic() < deadline:
        time.sleep(0.02)


def _store(request: pytest.FixtureRequest, tmp_path: Path, *, migrated: bool) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'pier.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.database(migrated=migrated)
    yield url
    server.drop(url)


@pytest.fixture
def repo(store_engine: Engine) -> Repository:
    """A migrated store with its default project, on each store (modules add what they
    need by overriding it: ``def repo(repo: Repository)``)."""
    repository = Repository(store_engine)
    repository.ensure_default_project()
    return repository


@pytest.fixture(scope="session")
def postgres_server() -> PostgresServer:
    """The test PostgreSQL server, started once a session (scripts/start-postgres.sh)."""
    return shared_postgres()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty PostgreSQL database of its own for one test, dropped after it."""
    url = postgres_server.database()
    yield url
    postgres_server.drop(url)


@pytest.fixture
def pier_factory(tmp_path: Path) -> Iterator[Callable[..., PierProcess]]:
    """Start real `pier up` processes; each is stopped and checked for leftovers."""
    started: list[PierProcess] = []

    def make(
        name: str = "data",
        *,
        start: bool = True,
        env: dict[str, str] | None = None,
        args: Sequence[str] = (),
    ) -> PierProcess:
        pier = PierProcess(
            tmp_path / name, free_port(), free_port(), extra_env=env or {}, extra_args=[*args]
        )
        started.append(pier)  # before start: one that never came up is stopped too
        if start:
            pier.start()
        return pier

    yield make
    for pier in started:
        _stop_and_clean(pier)


@contextlib.contextmanager
def running_pier(
    data_dir: Path, *, env: dict[str, str] | None = None, timeout_s: float = 60.0
) -> Iterator[PierProcess]:
    """One `pier up` for a whole module (see ``pier_factory`` for one per test)."""
    pier = PierProcess(data_dir, free_port(), free_port(), extra_env=env or {})
    try:
        pier.start(timeout_s)
        yield pier
    finally:
        _stop_and_clean(pier)


@pytest.fixture
def pier(pier_factory: Callable[..., PierProcess]) -> PierProcess:
    return pier_factory()


@pytest.fixture(scope="session")
def swarm_cluster() -> Iterator[Any]:
    """The session's own two-machine swarm (tests/swarm/cluster.py), dissolved at the end
    of the session whatever happened. Skipped with the reason when it cannot be formed
    here, except with CI=true, where that fails."""
    from tests.docker.images import missing_prerequisite
    from tests.swarm import cluster

    problem = cluster.problem() or missing_prerequisite()
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the swarm runtime must be testable in CI: {problem}")
        pytest.skip(f"no test swarm here: {problem}")
    swarm_id = str(os.getpid() % 240 + 10)  # two sessions at once: two swarms
    try:
        yield cluster.form(swarm_id)
    finally:
        cluster.dissolve(swarm_id)
