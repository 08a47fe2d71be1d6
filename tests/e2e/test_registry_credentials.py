"""Registry credentials kept as a project secret: a registry that needs a password."""

from __future__ import annotations

import contextlib
import subprocess
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.conftest import PierProcess, free_port

USER, PASSWORD = "pier", "s3cret-registry-password"


def bcrypt_line(user: str, password: str) -> str:
    with warnings.catch_warnings():  # crypt is deprecated, but bcrypt is all htpasswd takes
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    return f"{user}:{crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))}"


@contextlib.contextmanager
def private_registry(root: Path) -> Iterator[int]:
    """A local registry on a free 127.0.0.1 port that needs USER and PASSWORD, its files
    under ``root``; yields the port once it answers, and stops it after."""
    port = free_port()
    (root / "htpasswd").write_text(bcrypt_line(USER, PASSWORD) + "\n")
    (root / "config.yml").write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
        f"auth:\n  htpasswd:\n    realm: pier-test\n    path: {root / 'htpasswd'}\n"
    )
    with (root / "registry.log").open("wb") as log:
        registry = subprocess.Popen(
            ["docker-registry", "serve", str(root / "config.yml")],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_registry(port, registry, root / "registry.log")
        yield port
    finally:
        registry.terminate()
        registry.wait(10)


@pytest.fixture(scope="module")
def private_image(echo_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The echo image in a second local registry that requires a user and password."""
    with private_registry(tmp_path_factory.mktemp("private-registry")) as port:
        ref = f"127.0.0.1:{port}/pier-test/private:1"
        client = docker.from_env()
        client.images.get(echo_image).tag(ref)
        auth = {"username": USER, "password": PASSWORD}
        for line in client.images.push(ref, auth_config=auth, stream=True, decode=True):
            if "error" in line:
                raise AssertionError(f"push to the private registry failed: {line}")
        client.close()
        yield ref


def wait_for_registry(port: int, registry: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if registry.poll() is not None:
            raise AssertionError(f"registry exited:\n{log.read_text()}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
        except urllib.error.HTTPError as exc:
            if exc.code == 401:  # up, and asking for a password
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"registry did not start:\n{log.read_text()}")


def set_secret(pier: PierProcess, name: str, password: str) -> None:
    result = subprocess.run(
        [*pier.cli_argv(), "secret", "set", name, "--username", USER, "--password-stdin"],
        input=password, text=True, capture_output=True, env=pier.env, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_pull_with_the_project_secret_and_a_clear_error_without(
    pier: PierProcess, private_image: str
) -> None:
    set_secret(pier, "regcred", PASSWORD)
    set_secret(pier, "regbad", "not-the-password")
    listed = pier.cli("secret", "list").stdout
    assert "regcred" in listed and PASSWORD not in listed

    pier.cli(
        "node",
        "create",
        "web",
        "--image",
        private_image,
        "--port",
        "8080",
        "--health",
        "/healthz",
        "--registry-secret",
        "regcred",
        "--wait",
    )
    with pier.gateway() as gw:
        assert gw.get("/default/nodes/web/cgi-bin/echo").status_code == 200

    refused = pier.cli(
        "node",
        "create",
        "bad",
        "--image",
        private_image,
        "--port",
        "8080",
        "--registry-secret",
        "regbad",
        "--wait",
        "--wait-timeout",
        "30",
        check=False,
    )
    assert refused.returncode == 1
    failures = [e["message"] for e in pier.events("bad") if e["kind"] == "image_pull_failed"]
    assert failures and any("auth" in m.lower() or "denied" in m.lower() for m in failures)
    assert pier.node("bad")["status"] == "Unhealthy"

    missing = pier.cli(
        "node",
        "create",
        "ghost",
        "--image",
        private_image,
        "--port",
        "8080",
        "--registry-secret",
        "nope",
        check=False,
    )
    assert missing.returncode == 1 and "--registry-secret: no secret 'nope'" in missing.stderr

    everything = [
        pier.log_path.read_text(),
        refused.stderr,
        pier.cli("node", "get", "web", "--output", "json").stdout,
    ]
    assert not [text for text in everything if PASSWORD in text]
