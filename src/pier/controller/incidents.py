"""Unexpected failures of the controller's work (probes, pulls, removals, ticks).

Such work is retried with a backoff; each failure is told once per change, so the same
error on every retry makes one log line and one event, not one per tick. A message never
holds a secret: the values it must not show are replaced by '***'.
"""

from __future__ import annotations

import contextlib
from collections.abc import Hashable, Iterable
from typing import Final

import structlog

from pier.controller.store_thread import StoreThread
from pier.domain.errors import NotFound
from pier.domain.event_kinds import EventKind
from pier.domain.records import NodeRecord
from pier.domain.specs import SECRET_MASK
from pier.store.repository import Repository

log = structlog.get_logger("pier.controller")

MAX_MESSAGE_CHARS: Final = 500
PUBLIC_CREDENTIAL_KEYS: Final = frozenset({"username", "email", "serveraddress", "registry"})
"""Keys of registry credentials whose values are not secret (and too common to hide)."""


def describe_failure(exc: BaseException, *, secrets: Iterable[str] = ()) -> str:
    """``TypeName: text`` of an unexpected exception, cut short, secrets replaced."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]  # a task group's: the first failure tells
    text = str(exc).strip()
    message = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return redact(message, secrets)[:MAX_MESSAGE_CHARS]


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every non-empty value of ``secrets`` replaced by '***'."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, SECRET_MASK)
    return text


class Incidents:
    """The failure last told per subject (an instance's probe, a node's pull, ...)."""

    def __init__(self) -> None:
        self._told: dict[Hashable, str] = {}

    def is_news(self, subject: Hashable, message: str) -> bool:
        """Whether ``message`` differs from what was last told of ``subject`` (and
        remember it): the caller logs it and adds an event only then."""
        if self._told.get(subject) == message:
            return False
        self._told[subject] = message
        return True

    def resolved(self, subject: Hashable) -> bool:
        """Forget ``subject``'s failure (it worked again); whether there was one."""
        return self._told.pop(subject, None) is not None


class NodeEvents:
    """The events the controller adds to nodes' timelines. No secret of a node shows in
    one, and an unexpected failure is told (logged and added) once per change."""

    def __init__(self, repo: Repository, db: StoreThread) -> None:
        self._repo = repo
        self._db = db
        self._incidents = Incidents()

    async def add(
        self, node: NodeRecord, kind: EventKind, message: str, *, instance: str | None = None
    ) -> None:
        secrets = await self.secrets_of(node)
        await self._db.run(
            self._repo.add_event, node.project, node=node.name, instance=instance, kind=kind,
            message=redact(message, secrets),
        )  # fmt: skip

    async def secrets_of(self, node: NodeRecord) -> list[str]:
        """Values that must never show in a log line or an event of ``node``."""
        values = list(node.spec.secret_env.values())
        if node.spec.registry_secret is not None:
            with contextlib.suppress(NotFound):
                secret = await self._db.run(
                    self._repo.get_secret, node.project, node.spec.registry_secret
                )
                values += [str(v) for k, v in secret.items() if k not in PUBLIC_CREDENTIAL_KEYS]
        return values

    async def describe(self, exc: BaseException, node: NodeRecord | None) -> str:
        return describe_failure(exc, secrets=await self.secrets_of(node) if node else ())

    async def failure(
        self,
        subject: Hashable,
        message: str,
        *,
        node: NodeRecord | None,
        kind: EventKind,
        what: str,
        then: str = "",
        instance: str | None = None,
        exc: BaseException | None = None,
    ) -> bool:
        """Tell ``what: message`` unless it is what was last told of ``subject``: a log
        line, and an event of ``kind`` (``then`` appended) on the node when there is one.
        ``exc``: logged with its traceback (a failure that is a bug in pier). Returns
        whether it was told."""
        if node is not None:
            message = redact(message, await self.secrets_of(node))
        if not self._incidents.is_news(subject, message):
            return False
        where = {"node": str(node.key)} if node is not None else {}
        if instance is not None:
            where["instance"] = instance
        log.error(what, **where, error=message, exc_info=exc)
        if node is not None:
            await self.add(node, kind, f"{what}: {message}{then}", instance=instance)
        return True

    def resolved(self, subject: Hashable) -> bool:
        """``subject`` works again; whether it had failed."""
        return self._incidents.resolved(subject)
