"""Image pulls: each image node's image is pulled and pinned by digest in the background,
one pull per node at a time, honouring the node's backoff.

A registry's refusal (ImagePullFailed, any PierError) is an ``image_pull_failed`` event
per try; anything else a pull raises is a ``pull_failed`` event once per change of the
error. Both are retried after the backoff (a TemporaryError after its own delay), and the
node's message says what is going on. A PermanentError (a runtime that runs no images) is
one ``image_pull_failed`` event, and the node pulls again only once its spec changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from pier.controller.incidents import NodeEvents, redact
from pier.controller.node_state import NodeState
from pier.controller.store_thread import StoreThread
from pier.domain.errors import PierError, RuntimeUnavailable
from pier.domain.event_kinds import EventKind
from pier.domain.names import NodeKey
from pier.domain.records import NodeRecord
from pier.domain.retry import PermanentError
from pier.runtimes.base import Runtime
from pier.store.repository import Repository

K = EventKind


class ImagePulls:
    def __init__(
        self, repo: Repository, db: StoreThread, events: NodeEvents, clock: Callable[[], float]
    ) -> None:
        self._repo = repo
        self._db = db
        self._events = events
        self._clock = clock
        self._tasks: dict[NodeKey, asyncio.Task[None]] = {}
        self._progress: dict[NodeKey, str] = {}
        self._errors: dict[NodeKey, str] = {}

    def ensure(
        self, node: NodeRecord, runtime: Runtime | None, state: NodeState, now: float
    ) -> None:
        """Start pulling the node's image unless a pull runs, the backoff is on, or the
        node's spec is blocked."""
        running = self._tasks.get(node.key)
        if (running is not None and not running.done()) or state.backoff.until > now:
            return
        if state.blocked_message(node.generation) is not None:
            return
        self._tasks[node.key] = asyncio.create_task(
            self._pull(node, runtime, state), name=f"pull {node.key}"
        )

    def message(self, key: NodeKey) -> str | None:
        """The pull's progress, or why the last one failed."""
        return self._progress.get(key) or self._errors.get(key)

    def forget(self, key: NodeKey) -> None:
        """The node is gone: stop its pull and drop what was known of it."""
        task = self._tasks.pop(key, None)
        if task is not None:
            task.cancel()
        self._progress.pop(key, None)
        self._errors.pop(key, None)

    def cancel(self) -> None:
        for task in self._tasks.values():
            task.cancel()

    async def _pull(self, node: NodeRecord, runtime: Runtime | None, state: NodeState) -> None:
        assert node.spec.image is not None
        key = node.key

        def progress(line: str) -> None:
            self._progress[key] = line

        try:
            if runtime is None:
                raise RuntimeUnavailable(f"runtime {node.runtime} cannot pull images")
            auth = (
                await self._db.run(self._repo.get_secret, node.project, node.spec.registry_secret)
                if node.spec.registry_secret
                else None
            )
            progress(f"pulling {node.spec.image}")
            pinned = await runtime.resolve_image(node.spec.image, auth=auth, on_progress=progress)
        except PermanentError as exc:
            await self._blocked(node, exc, state)
        except PierError as exc:
            delay_s = state.backoff.after(exc, now=self._clock())
            self._errors[key] = exc.message
            await self._events.add(
                node, K.IMAGE_PULL_FAILED, f"{exc.message}; next try in {delay_s:g} s"
            )
        except Exception as exc:
            await self._broke(node, exc, state)
        else:
            self._errors.pop(key, None)
            self._events.resolved(("pull", key))
            await self._db.run(self._repo.pin_image, node.project, node.name, pinned)
            await self._events.add(
                node, K.IMAGE_PINNED, f"image {node.spec.image} pinned as {pinned}"
            )
        finally:
            self._progress.pop(key, None)

    async def _blocked(self, node: NodeRecord, exc: PermanentError, state: NodeState) -> None:
        """No pull of this image can succeed: say so once, and wait for a new spec."""
        message = redact(f"{exc}; not retried until the node's spec changes",
                         await self._events.secrets_of(node))  # fmt: skip
        self._errors[node.key] = message
        state.block(node.generation, message)
        await self._events.add(node, K.IMAGE_PULL_FAILED, message)

    async def _broke(self, node: NodeRecord, exc: Exception, state: NodeState) -> None:
        """The pull raised something the runtime does not turn into an ImagePullFailed."""
        delay_s = state.backoff.after(exc, now=self._clock())
        message = await self._events.describe(exc, node)
        self._errors[node.key] = f"pulling {node.spec.image} failed: {message}"
        await self._events.failure(
            ("pull", node.key), message, node=node, kind=K.PULL_FAILED,
            what=f"pulling {node.spec.image} failed",
            then=f"; retrying with a backoff (next try in {delay_s:g} s)",
        )  # fmt: skip
