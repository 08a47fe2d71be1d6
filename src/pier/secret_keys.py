"""The keys that seal secret values at rest, kept outside the store.

From ``PIER_SECRETS_KEY`` (Settings.secrets_key: Fernet keys separated by commas, the
first seals) or else from ``<data dir>/secrets.key`` (one key a line, the first seals),
which `pier up` makes with mode 0600 on first start. A copy of the store alone reveals
no secret value; a copy of the store and of this file does.

Rotation (`pier secret rotate-key`): with the key file, a new key is written in front of
the old ones, every value is sealed again with it in one transaction, then the old keys
are dropped from the file. A crash in between leaves a file that opens every value. With
the key from the environment, pier cannot change it: the operator puts the new key first
(``PIER_SECRETS_KEY=NEW,OLD``), restarts, rotates, and then drops the old one.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Protocol

from cryptography.fernet import Fernet

from pier.domain.errors import RuntimeUnavailable
from pier.domain.views import KeyRotated
from pier.store.sealing import Sealer


class SealedStore(Protocol):
    def reseal_secrets(self, sealer: Sealer | None = None) -> int: ...
    def use_sealer(self, sealer: Sealer) -> None: ...


class SecretKeys:
    """Where the sealing keys come from, and how they rotate."""

    def __init__(self, keys: list[bytes], *, path: Path | None) -> None:
        """``path``: the key file, or None when the keys came from the environment."""
        self._keys = keys
        self._path = path
        self._rotating = threading.Lock()

    @classmethod
    def load(cls, from_env: str | None, path: Path) -> SecretKeys:
        """The keys of ``PIER_SECRETS_KEY`` if set, else of ``path`` (made if missing)."""
        if from_env:
            return cls(
                _parse(from_env.split(","), what="secrets_key (PIER_SECRETS_KEY)"), path=None
            )
        if not path.exists():
            _write_keys(path, [Fernet.generate_key()])
        return cls(_parse(path.read_text().splitlines(), what=str(path)), path=path)

    @property
    def source(self) -> str:
        return "environment" if self._path is None else "file"

    def sealer(self) -> Sealer:
        return Sealer(self._keys)

    def rotate(self, store: SealedStore) -> KeyRotated:
        """Seal every value again with a new key (file) or the first key (environment)."""
        with self._rotating:
            if self._path is None:
                sealed = store.reseal_secrets(Sealer(self._keys))
                note = "sealed with the first key of PIER_SECRETS_KEY; drop the others from it"
                return KeyRotated(sealed=sealed, key_source="environment", message=note)
            new = [Fernet.generate_key()]
            _write_keys(self._path, new + self._keys)  # opens old and new values if we stop
            sealed = store.reseal_secrets(Sealer(new + self._keys))
            _write_keys(self._path, new)
            self._keys = new
            store.use_sealer(Sealer(new))
            note = f"sealed with a new key in {self._path}; the old key is gone"
            return KeyRotated(sealed=sealed, key_source="file", message=note)


def _parse(lines: list[str], *, what: str) -> list[bytes]:
    keys = [line.strip().encode() for line in lines if line.strip()]
    if not keys:
        raise RuntimeUnavailable(f"{what} holds no key")
    for key in keys:
        try:
            Fernet(key)
        except ValueError:
            raise RuntimeUnavailable(
                f"{what} holds a key that is not a Fernet key (32 url-safe base64-encoded "
                "bytes, as `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'` prints)"
            ) from None
    return keys


def _write_keys(path: Path, keys: list[bytes]) -> None:
    """Replace the key file atomically; it is readable by its owner only."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("".join(key.decode() + "\n" for key in keys))
        out.flush()
        os.fsync(out.fileno())
    os.chmod(partial, 0o600)
    os.replace(partial, path)
