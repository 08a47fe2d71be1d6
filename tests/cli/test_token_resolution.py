"""Token and URL resolution: explicit, then environment, then the file `pier up` writes."""

from __future__ import annotations

from pathlib import Path

import pytest

import pier
from pier.client import Client, resolve_token, resolve_url


def write_token(data_dir: Path, token: str) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "admin.token").write_text(token + "\n")


def test_explicit_token_wins_over_env_and_file(tmp_path: Path) -> None:
    write_token(tmp_path, "from-file")
    env = {"PIER_TOKEN": "from-env", "PIER_DATA_DIR": str(tmp_path)}
    assert resolve_token("explicit", env=env) == "explicit"


def test_env_token_wins_over_file(tmp_path: Path) -> None:
    write_token(tmp_path, "from-file")
    assert resolve_token(env={"PIER_TOKEN": "from-env", "PIER_DATA_DIR": str(tmp_path)}) == (
        "from-env"
    )


def test_token_file_in_pier_data_dir(tmp_path: Path) -> None:
    write_token(tmp_path / "data", "from-file")
    assert resolve_token(env={"PIER_DATA_DIR": str(tmp_path / "data")}) == "from-file"


def test_token_file_in_dot_pier_of_the_current_directory(tmp_path: Path) -> None:
    write_token(tmp_path / ".pier", "from-cwd")  # hermetic_env made tmp_path the cwd
    assert resolve_token() == "from-cwd"


@pytest.mark.parametrize("content", [None, "", "  \n"])
def test_no_token_says_where_pier_up_writes_it(tmp_path: Path, content: str | None) -> None:
    if content is not None:
        write_token(tmp_path, content)
    with pytest.raises(pier.Unauthorized) as caught:
        resolve_token(env={"PIER_DATA_DIR": str(tmp_path)})
    message = caught.value.message
    assert str(tmp_path / "admin.token") in message
    assert "PIER_TOKEN" in message and "--token" in message and "pier up" in message


def test_client_resolves_the_token_only_when_it_needs_it() -> None:
    client = Client()  # nothing configured: constructing must still work
    with client, pytest.raises(pier.Unauthorized):
        client.list_nodes()


def test_url_explicit_then_env_then_default() -> None:
    env = {"PIER_URL": "http://env:1/"}
    assert resolve_url("http://explicit:2/", env=env) == "http://explicit:2"
    assert resolve_url(env=env) == "http://env:1"
    assert resolve_url(env={}) == "http://127.0.0.1:8080"
