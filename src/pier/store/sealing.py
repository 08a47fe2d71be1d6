"""Secret values sealed at rest: what the store keeps of a secret is a Fernet token.

Fernet (``cryptography``) is AES-128-CBC with an HMAC-SHA256 over it: a token read from a
copied store file reveals nothing without the key, and a changed one is refused. The key
is kept outside the store (``pier.secret_keys``). A ``Sealer`` holds one or more keys:
the first seals, any of them opens, so a rotation can re-seal every value with a new key
while the old one still opens what is not re-sealed yet.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from pier.domain.errors import StoreUnavailable

SEALED_PREFIX = "fernet:"
"""Marks a sealed value in the store, so that a value kept before sealing is told apart."""


class Sealer:
    """Seals and opens secret values with its keys (the first one seals)."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("a Sealer needs at least one key")
        self.keys = tuple(keys)
        self._fernet = MultiFernet([Fernet(key) for key in self.keys])

    @classmethod
    def ephemeral(cls) -> Sealer:
        """A Sealer with a new random key that nothing keeps (for a store used in-process)."""
        return cls([Fernet.generate_key()])

    def seal(self, value: Mapping[str, str]) -> str:
        """The sealed text of ``value``."""
        data = json.dumps(dict(value), sort_keys=True).encode()
        return SEALED_PREFIX + self._fernet.encrypt(data).decode()

    def open(self, text: str) -> dict[str, str]:
        """The value sealed in ``text``; StoreUnavailable if none of the keys opens it."""
        if not text.startswith(SEALED_PREFIX):
            raise StoreUnavailable("a stored secret is not sealed; restart pier to seal it")
        try:
            data = self._fernet.decrypt(text[len(SEALED_PREFIX) :].encode())
        except InvalidToken:
            raise StoreUnavailable(
                "a stored secret cannot be opened with the secrets key: the key is not the "
                "one it was sealed with (PIER_SECRETS_KEY or <data dir>/secrets.key)"
            ) from None
        opened: dict[str, str] = json.loads(data)
        return opened

    def reseal(self, text: str) -> str:
        """``text`` sealed again with the first key."""
        return SEALED_PREFIX + self._fernet.rotate(text[len(SEALED_PREFIX) :].encode()).decode()


def is_sealed(text: object) -> bool:
    return isinstance(text, str) and text.startswith(SEALED_PREFIX)
