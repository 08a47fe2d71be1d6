"""SQLAlchemy tables. Every change here comes with an Alembic migration."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[str]: JSON}


class ProjectRow(Base):
    __tablename__ = "projects"
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PrincipalRow(Base):
    """A user or a service account: what members and tokens belong to."""

    __tablename__ = "principals"
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    project: Mapped[str | None] = mapped_column(String(63), nullable=True)
    """A service account's own project (it is deleted with it); None for a user."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class MemberRow(Base):
    """A principal's role in a project."""

    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("project", "principal"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(ForeignKey("projects.name"))
    principal: Mapped[str] = mapped_column(ForeignKey("principals.name"))
    role: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TokenRow(Base):
    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(63))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(32))
    """A project role, or installation-admin (then ``project`` is None)."""
    project: Mapped[str | None] = mapped_column(String(63), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    principal: Mapped[str | None] = mapped_column(String(63), nullable=True)
    """The user or service account it belongs to; None: a project token of its own."""
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ModelRow(Base):
    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("project", "name", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(ForeignKey("projects.name"))
    name: Mapped[str] = mapped_column(String(63))
    version: Mapped[int] = mapped_column(Integer)
    format: Mapped[str] = mapped_column(String(16))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class NodeRow(Base):
    __tablename__ = "nodes"
    __table_args__ = (UniqueConstraint("project", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(ForeignKey("projects.name"))
    name: Mapped[str] = mapped_column(String(63))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    """The NodeSpec as JSON, its ``secret_env`` sealed (pier.store.sealing)."""
    generation: Mapped[int] = mapped_column(Integer, default=1)
    deleting: Mapped[bool] = mapped_column(default=False)
    reached_minimum: Mapped[bool] = mapped_column(default=False)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    crash_looping: Mapped[bool] = mapped_column(default=False)
    target_instances: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """The autoscaler's latest target; None until the controller first decided one."""
    pinned_image: Mapped[str | None] = mapped_column(String(512), nullable=True)
    """The image by digest, fixed when the first instance is made: every instance runs it."""
    runtime: Mapped[str] = mapped_column(String(32))
    """The runtime the node is bound to, decided when it is created; never another."""
    suspended: Mapped[bool] = mapped_column(default=False, server_default=false())
    """Suspended on request: the controller runs no instance of it until it is resumed."""
    change_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0", index=True)
    """The number of the row's latest change (StoreChangesRow.seq when it was written)."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StoreChangesRow(Base):
    """One row (id 1): the store-wide change counter. Every write of what the controller
    reads on a tick (nodes, aliases and rollouts, tokens and members, project limits)
    counts one change; a reader that saw ``seq`` N reads only what changed after N."""

    __tablename__ = "store_changes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    nodes_removed_seq: Mapped[int] = mapped_column(BigInteger)
    """The number of the latest change that removed a node (a removed row cannot be read
    as changed: a reader behind it reads every node again)."""


class InstanceRow(Base):
    __tablename__ = "instances"
    __table_args__ = (Index("ix_instances_node", "project", "node"),)
    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    project: Mapped[str] = mapped_column(String(63))
    node: Mapped[str] = mapped_column(String(63))
    status: Mapped[str] = mapped_column(String(16))
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    endpoint: Mapped[str | None] = mapped_column(String(255), nullable=True)
    restarts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    generation: Mapped[int] = mapped_column(Integer, default=1)
    runtime: Mapped[str] = mapped_column(String(32))
    limits_applied: Mapped[list[str]] = mapped_column(JSON)
    limits_not_applied: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    port_endpoints: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    """Container port (as text: JSON keys) -> base URL, for a separate health/metrics port."""
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    container_id: Mapped[str | None] = mapped_column(String(80), nullable=True)


class EventRow(Base):
    __tablename__ = "events"
    __table_args__ = (Index("ix_events_node", "project", "node", "id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    project: Mapped[str] = mapped_column(String(63))
    node: Mapped[str | None] = mapped_column(String(63), nullable=True)
    instance: Mapped[str | None] = mapped_column(String(80), nullable=True)
    kind: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)
    actor: Mapped[str | None] = mapped_column(String(63), nullable=True)


class SecretRow(Base):
    """A project secret (e.g. registry credentials); its value never leaves the server."""

    __tablename__ = "secrets"
    __table_args__ = (UniqueConstraint("project", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(ForeignKey("projects.name"))
    name: Mapped[str] = mapped_column(String(63))
    value: Mapped[Any] = mapped_column(JSON)
    """Sealed text (pier.store.sealing); a mapping only if kept before values were sealed."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AliasRow(Base):
    """An alias; its spec (nodes and shares, mirrors, routes, metadata, access) as JSON."""

    __tablename__ = "aliases"
    __table_args__ = (UniqueConstraint("project", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(ForeignKey("projects.name"))
    name: Mapped[str] = mapped_column(String(63))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AliasRolloutRow(Base):
    """An alias's latest guarded rollout: its whole state (domain.rollouts) as JSON."""

    __tablename__ = "alias_rollouts"
    __table_args__ = (UniqueConstraint("project", "alias"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(ForeignKey("projects.name"))
    alias: Mapped[str] = mapped_column(String(63))
    phase: Mapped[str] = mapped_column(String(16))
    """running, completed or rolled_back (also in ``state``; a column to find the
    running ones)."""
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuditRow(Base):
    """One change asked of the API (pier.domain.audit.AuditEntry): never a body or header."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_time", "time"),
        Index("ix_audit_log_project", "project", "id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(63))
    project: Mapped[str | None] = mapped_column(String(63), nullable=True)
    action: Mapped[str] = mapped_column(String(63))
    target: Mapped[str | None] = mapped_column(String(255), nullable=True)
    method: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(String(1024))
    client: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(String(63), nullable=True)


class ProjectLimitsRow(Base):
    """A project's allowed configurations and quotas (pier.domain.quotas.ProjectLimits);
    a project without a row has no limits."""

    __tablename__ = "project_limits"
    project: Mapped[str] = mapped_column(
        ForeignKey("projects.name", ondelete="CASCADE"), primary_key=True
    )
    configurations: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    """None: every configuration."""
    max_instances: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_vcpus: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_memory_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    max_gpus: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LeaseRow(Base):
    """A lease among the `pier up` processes sharing the store (pier.domain.lease);
    ``name`` is what it is for: ``controller``."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    term: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    renewed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
