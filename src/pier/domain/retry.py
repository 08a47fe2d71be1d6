"""Retry semantics of failed work, as types (kopf's TemporaryError / PermanentError).

Whoever raises knows best whether trying again can help: a runtime whose engine stopped
answering mid-call can say "try again in a second"; one that cannot run a spec at all
(no command, a command it cannot start) fails the same way every time. The controller
acts on the type: a temporary error is retried after its ``delay_s`` (never later than
its backoff's longest wait), a permanent one is told on the node and not retried until
the node's spec changes; any other exception is retried with the backoff.

These are mixins, next to a PierError class where the error can also reach a user
(``class RuntimeLost(RuntimeUnavailable, TemporaryError)``): the API answers by the
PierError class and never shows the retry semantics.
"""

from __future__ import annotations

from typing import ClassVar


class TemporaryError(Exception):
    """Fails now, may work later: try again after ``delay_s``."""

    default_delay_s: ClassVar[float] = 1.0

    def __init__(self, *args: object, delay_s: float | None = None) -> None:
        super().__init__(*args)
        self.delay_s = self.default_delay_s if delay_s is None else delay_s


class PermanentError(Exception):
    """Fails the same way on every try until the node's spec changes: not retried before."""
