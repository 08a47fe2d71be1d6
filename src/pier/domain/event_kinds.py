"""The kinds of events on a node's timeline (``pier node events``, ``GET .../events``).

The values are the public spellings; a kind that tells of a failure is in FAILURES (the
node's message quotes the latest of them while it crash-loops).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class EventKind(StrEnum):
    NODE_CREATED = "node_created"
    NODE_UPDATED = "node_updated"
    NODE_DELETING = "node_deleting"
    NODE_SCALED = "node_scaled"
    QUOTA_REACHED = "quota_reached"
    """The autoscaler holds a node below what its load asks for: a project quota is full."""
    NODE_SUSPENDED = "node_suspended"
    NODE_RESUMED = "node_resumed"
    ROLLOUT_STARTED = "rollout_started"
    ROLLOUT_ADVANCED = "rollout_advanced"
    ROLLOUT_COMPLETED = "rollout_completed"
    ROLLOUT_ROLLED_BACK = "rollout_rolled_back"
    INSTANCE_CREATED = "instance_created"
    INSTANCE_STATUS = "instance_status"
    INSTANCE_ADOPTED = "instance_adopted"
    INSTANCE_DELETED = "instance_deleted"
    INSTANCE_LOST = "instance_lost"
    INSTANCE_FAILED = "instance_failed"
    INSTANCE_CREATE_FAILED = "instance_create_failed"
    IMAGE_PINNED = "image_pinned"
    IMAGE_PULL_FAILED = "image_pull_failed"
    PULL_FAILED = "pull_failed"
    PROBE_FAILED = "probe_failed"
    DELETE_FAILED = "delete_failed"
    RECONCILE_FAILED = "reconcile_failed"
    RUNTIME_UNAVAILABLE = "runtime_unavailable"
    RUNTIME_AVAILABLE = "runtime_available"
    MODEL_PUSHED = "model_pushed"
    MODEL_DELETED = "model_deleted"
    SECRET_SET = "secret_set"
    SECRET_DELETED = "secret_deleted"
    ALIAS_CREATED = "alias_created"
    ALIAS_UPDATED = "alias_updated"
    ALIAS_DELETED = "alias_deleted"


_K = EventKind
FAILURES: Final = frozenset(
    {
        _K.INSTANCE_FAILED, _K.INSTANCE_CREATE_FAILED, _K.IMAGE_PULL_FAILED, _K.PULL_FAILED,
        _K.PROBE_FAILED, _K.DELETE_FAILED, _K.RECONCILE_FAILED,
    }
)  # fmt: skip
"""Kinds that tell of a failure."""
