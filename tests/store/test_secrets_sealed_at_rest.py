"""Secret values are sealed at rest: a copy of the store file reveals none of them, the
key lives outside the store (0600), and rotating the key seals every value again."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine, insert, select, text

from pier.domain.errors import RuntimeUnavailable, StoreUnavailable
from pier.domain.specs import parse_node_spec
from pier.secret_keys import SecretKeys
from pier.store.repository import Repository, utcnow
from pier.store.sealing import Sealer, is_sealed
from pier.store.tables import SecretRow

PASSWORD = "hunter2-registry-password-f00d"
TOKEN = "sk-env-secret-value-b33f"


def fill(repo: Repository) -> None:
    repo.ensure_default_project()
    repo.put_secret("default", "registry", {"username": "pier", "password": PASSWORD})
    spec = parse_node_spec(
        {"image": "127.0.0.1:5000/echo:1", "port": 8080, "secret_env": {"TOKEN": TOKEN}}
    )
    repo.add_node("default", "web", spec, runtime="docker")


def store_bytes(engine: Engine, tmp_path: Path) -> bytes:
    """Every byte of a copy of the store's files: SQLite's database and its WAL, or the
    files of the PostgreSQL database (its tables and indexes, written out first)."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("CHECKPOINT"))
            where = connection.scalar(
                text(
                    "SELECT current_setting('data_directory') || '/base/' || oid "
                    "FROM pg_database WHERE datname = current_database()"
                )
            )
        return b"".join(p.read_bytes() for p in sorted(Path(where).iterdir()) if p.is_file())
    engine.dispose()
    copies = tmp_path / "copy"
    copies.mkdir(exist_ok=True)
    data = b""
    for path in sorted(tmp_path.glob("pier.db*")):
        data += shutil.copy(path, copies / path.name).read_bytes()
    return data


def test_a_copy_of_the_store_file_reveals_no_secret_value(engine: Engine, tmp_path: Path) -> None:
    repo = Repository(engine, sealer=Sealer([Fernet.generate_key()]))
    fill(repo)
    data = store_bytes(engine, tmp_path)
    assert PASSWORD.encode() not in data
    assert TOKEN.encode() not in data
    assert b"registry" in data  # names stay readable: only values are sealed
    assert repo.get_secret("default", "registry")["password"] == PASSWORD
    assert repo.get_node("default", "web").spec.secret_env == {"TOKEN": TOKEN}


def test_the_key_file_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "data" / "secrets.key"
    first = SecretKeys.load(None, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert SecretKeys.load(None, path).sealer().keys == first.sealer().keys


def test_a_store_opened_with_another_key_refuses_to_open_the_values(engine: Engine) -> None:
    fill(Repository(engine, sealer=Sealer([Fernet.generate_key()])))
    other = Repository(engine, sealer=Sealer([Fernet.generate_key()]))
    with pytest.raises(StoreUnavailable, match="secrets key"):
        other.get_secret("default", "registry")


def test_rotating_the_key_file_seals_every_value_with_a_new_key(
    engine: Engine, tmp_path: Path
) -> None:
    keys = SecretKeys.load(None, tmp_path / "secrets.key")
    old = keys.sealer().keys
    repo = Repository(engine, sealer=keys.sealer())
    fill(repo)
    result = keys.rotate(repo)
    assert (result.sealed, result.key_source) == (2, "file")
    new = SecretKeys.load(None, tmp_path / "secrets.key").sealer().keys
    assert len(new) == 1 and new[0] not in old
    assert stat.S_IMODE((tmp_path / "secrets.key").stat().st_mode) == 0o600
    with pytest.raises(StoreUnavailable):
        Repository(engine, sealer=Sealer(old)).get_secret("default", "registry")
    reopened = Repository(engine, sealer=Sealer(new))
    assert reopened.get_secret("default", "registry")["password"] == PASSWORD
    assert reopened.get_node("default", "web").spec.secret_env == {"TOKEN": TOKEN}
    assert repo.get_secret("default", "registry")["password"] == PASSWORD


def test_rotating_keys_from_the_environment_seals_with_the_first(engine: Engine) -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    fill(Repository(engine, sealer=Sealer([old])))
    keys = SecretKeys.load(f"{new.decode()},{old.decode()}", Path("/nonexistent/secrets.key"))
    result = keys.rotate(Repository(engine, sealer=keys.sealer()))
    assert (result.sealed, result.key_source) == (2, "environment")
    assert Repository(engine, sealer=Sealer([new])).get_secret("default", "registry")


def test_a_value_kept_before_sealing_is_sealed_at_start(engine: Engine, tmp_path: Path) -> None:
    repo = Repository(engine, sealer=Sealer([Fernet.generate_key()]))
    repo.ensure_default_project()
    with engine.begin() as connection:  # as a store written before values were sealed
        connection.execute(
            insert(SecretRow).values(
                project="default", name="old", value={"password": PASSWORD},
                created_at=utcnow(), updated_at=utcnow(),
            )
        )  # fmt: skip
    assert repo.reseal_secrets() == 1
    assert repo.get_secret("default", "old") == {"password": PASSWORD}
    with engine.connect() as connection:
        assert is_sealed(connection.scalar(select(SecretRow.value)))
    if engine.dialect.name == "sqlite":
        # PostgreSQL keeps a replaced row version in its files until it is vacuumed, and a
        # PostgreSQL store never held an unsealed value (they were sealed before it came)
        assert PASSWORD.encode() not in store_bytes(engine, tmp_path)


def test_a_key_that_is_not_a_fernet_key_is_refused_naming_the_setting() -> None:
    with pytest.raises(RuntimeUnavailable, match="PIER_SECRETS_KEY"):
        SecretKeys.load("not-a-key", Path("/nonexistent"))
