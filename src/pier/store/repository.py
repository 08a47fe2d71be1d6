"""The Repository: the only module that speaks SQL. Returns domain records.

Calls are short and synchronous; on SQLite they take well under a millisecond, so
async callers use them directly rather than paying a thread hop per query.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, Select, delete, func, select, update
from sqlalchemy.exc import DisconnectionError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker

from pier.domain.aliases import AliasSpec
from pier.domain.audit import AuditEntry, AuditOutcome, AuditQuery
from pier.domain.errors import (
    AliasNotFound,
    Conflict,
    ModelNotFound,
    NameTaken,
    NodeNotFound,
    NotFound,
    ProjectNotFound,
    StoreUnavailable,
)
from pier.domain.instance_status import InstanceStatus
from pier.domain.names import DEFAULT_PROJECT
from pier.domain.quotas import ProjectLimits
from pier.domain.records import (
    AliasRecord,
    CallGrants,
    EventRecord,
    InstanceRecord,
    ModelRecord,
    NodeChanges,
    NodeRecord,
    RolloutRecord,
)
from pier.domain.roles import (
    INSTALLATION_ADMIN,
    Permission,
    Principal,
    PrincipalKind,
    Role,
    token_permissions,
)
from pier.domain.rollouts import DECISION_EVENTS, RolloutPhase, RolloutState
from pier.domain.specs import ModelFormat, NodeSpec
from pier.domain.views import MemberView, ServiceAccountView, TokenInfo
from pier.store.sealing import Sealer, is_sealed
from pier.store.tables import (
    AliasRolloutRow,
    AliasRow,
    AuditRow,
    EventRow,
    InstanceRow,
    MemberRow,
    ModelRow,
    NodeRow,
    PrincipalRow,
    ProjectLimitsRow,
    ProjectRow,
    SecretRow,
    StoreChangesRow,
    TokenRow,
)

STORE_FAILURES = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)
"""The store itself failing (locked, read-only, disk full, unreachable), not pier's SQL."""

AUDIT_PRUNE_EVERY = 1000
"""Entries past the audit log's size setting are dropped once per this many new ones."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class Repository:
    """Projects, tokens, models, nodes, aliases, instances and events."""

    def __init__(self, engine: Engine, *, sealer: Sealer | None = None) -> None:
        """``sealer`` seals secret values and nodes' ``secret_env`` at rest; without one,
        a key of its own that nothing keeps (a store used in one process only)."""
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._unit: ContextVar[Session | None] = ContextVar("pier_store_unit", default=None)
        self._sealer = sealer or Sealer.ephemeral()
        self._specs: dict[tuple[str, str], tuple[dict[str, Any], NodeSpec]] = {}
        """Each node's spec as last parsed, with the stored value it was parsed from: a
        spec is opened and validated once per change, not on every read."""
        self._collate_c = engine.dialect.name == "postgresql"

    def _bytewise(
        self, *columns: InstrumentedAttribute[str]
    ) -> list[ColumnElement[str] | InstrumentedAttribute[str]]:
        """``columns`` to order by byte by byte, as SQLite does: PostgreSQL orders text by
        the database's collation otherwise (en-US puts "B" after "a" and ignores "-")."""
        return [c.collate("C") if self._collate_c else c for c in columns]

    @contextmanager
    def unit_of_work(self) -> Iterator[None]:
        """Run the calls made inside as one transaction: all of them are stored, or none
        (a multi-step change such as a spec update and its event). It holds the store's
        write lock from its start, so what it reads before writing (a quota's use, the
        nodes an alias names) is not changed by another writer in between."""
        if self._unit.get() is not None:
            yield  # already inside one
            return
        with self._transaction() as session:
            take_write_lock(session)
            token = self._unit.set(session)
            try:
                yield
            finally:
                self._unit.reset(token)

    @contextmanager
    def _session(self) -> Iterator[Session]:
        """The unit of work's transaction, or one of its own."""
        if (session := self._unit.get()) is not None:
            yield session
            return
        with self._transaction() as session:
            yield session

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        """One transaction; a failing store raises StoreUnavailable, named by the
        database's own reason and never by the statement or its values."""
        with transaction(self._sessions) as session:
            yield session

    @contextmanager
    def _locked(self) -> Iterator[Session]:
        """``_session()`` holding the store's write lock from its start: a read-then-write
        (a generation, a next version, a row made if missing) is not interleaved with
        another writer's, in this process or another (two API processes on one store).
        SQLite: BEGIN IMMEDIATE; PostgreSQL: a transaction-scoped advisory lock. Waiting
        longer than the busy timeout is StoreUnavailable, as for any locked store."""
        with self._session() as s:
            take_write_lock(s)
            yield s

    # the change counter

    @staticmethod
    def _changed(s: Session, *, node_removed: bool = False) -> int:
        """Count one change of what the controller reads on a tick (StoreChangesRow) and
        return its number. Called before the writes it stands for: on PostgreSQL the
        counter's row lock then orders the writers (the advisory write lock, then the
        counter, then the rows), so a reader that sees number N sees every change up to N."""
        values: dict[str, Any] = {"seq": StoreChangesRow.seq + 1}
        if node_removed:
            values["nodes_removed_seq"] = StoreChangesRow.seq + 1
        bump = (
            update(StoreChangesRow)
            .where(StoreChangesRow.id == 1)
            .values(values)
            .returning(StoreChangesRow.seq)
        )
        return int(s.execute(bump, execution_options={"synchronize_session": False}).scalar_one())

    def change_seq(self) -> int:
        """The number of the store's latest change (see StoreChangesRow)."""
        with self._session() as s:
            return int(s.scalar(select(StoreChangesRow.seq).where(StoreChangesRow.id == 1)) or 0)

    def node_changes(self, since: int | None) -> NodeChanges:
        """The nodes changed after change number ``since``: none when nothing changed (one
        read of the counter), every node when ``since`` is None or a node was removed
        since then (``whole``)."""
        counter = select(StoreChangesRow.seq, StoreChangesRow.nodes_removed_seq)
        with self._session() as s:
            seq, removed = s.execute(counter.where(StoreChangesRow.id == 1)).one()
            if since is not None and seq == since:
                return NodeChanges(seq)
            whole = since is None or removed > since or seq < since
            query = select(NodeRow).order_by(*self._bytewise(NodeRow.project, NodeRow.name))
            if not whole:
                query = query.where(NodeRow.change_seq > since)
            return NodeChanges(seq, tuple(self._node(r) for r in s.scalars(query)), whole=whole)

    # projects and tokens

    def ensure_default_project(self) -> None:
        with self._locked() as s:
            if s.get(ProjectRow, DEFAULT_PROJECT) is None:
                s.add(ProjectRow(name=DEFAULT_PROJECT, created_at=utcnow()))

    def require_project(self, project: str) -> None:
        with self._session() as s:
            if s.get(ProjectRow, project) is None:
                raise ProjectNotFound(project)

    def add_project(self, name: str) -> None:
        with self._locked() as s:
            if s.get(ProjectRow, name) is not None:
                raise Conflict(f"project {name!r} already exists")
            s.add(ProjectRow(name=name, created_at=utcnow()))

    def list_projects(self) -> list[tuple[str, datetime]]:
        with self._session() as s:
            rows = s.scalars(select(ProjectRow).order_by(*self._bytewise(ProjectRow.name)))
            return [(row.name, _utc(row.created_at)) for row in rows]

    def get_project(self, name: str) -> tuple[str, datetime]:
        with self._session() as s:
            row = s.get(ProjectRow, name)
            if row is None:
                raise ProjectNotFound(name)
            return row.name, _utc(row.created_at)

    def project_contents(self, name: str) -> dict[str, list[str]]:
        """The names of what the project holds that keeps it from being deleted."""
        with self._session() as s:
            nodes = s.scalars(select(NodeRow.name).where(NodeRow.project == name))
            aliases = s.scalars(select(AliasRow.name).where(AliasRow.project == name))
            models = s.scalars(select(ModelRow.name).where(ModelRow.project == name).distinct())
            return {"nodes": sorted(nodes), "aliases": sorted(aliases), "models": sorted(models)}

    def remove_project(self, name: str) -> None:
        """Delete an empty project with its secrets, members, service accounts, tokens
        and events."""
        with self._session() as s:
            self._changed(s)
            accounts = select(PrincipalRow.name).where(PrincipalRow.project == name)
            s.execute(delete(TokenRow).where(TokenRow.principal.in_(accounts)))
            s.execute(delete(MemberRow).where(MemberRow.principal.in_(accounts)))
            s.execute(delete(PrincipalRow).where(PrincipalRow.project == name))
            s.execute(delete(TokenRow).where(TokenRow.project == name))
            s.execute(delete(MemberRow).where(MemberRow.project == name))
            s.execute(delete(SecretRow).where(SecretRow.project == name))
            s.execute(delete(EventRow).where(EventRow.project == name))
            s.execute(delete(ProjectRow).where(ProjectRow.name == name))

    # principals and members

    def add_member(self, project: str, principal: str, role: str) -> MemberView:
        """Give ``principal`` (a user, made now if new) ``role`` in the project."""
        with self._locked() as s:
            self._changed(s)
            who = s.get(PrincipalRow, principal)
            if who is None:
                who = PrincipalRow(name=principal, kind=PrincipalKind.USER, created_at=utcnow())
                s.add(who)
            row = s.scalar(_member(project, principal))
            if row is None:
                s.add(
                    MemberRow(project=project, principal=principal, role=role, created_at=utcnow())
                )
            else:
                row.role = role
            return MemberView(principal=principal, kind=PrincipalKind(who.kind), role=Role(role))

    def list_members(self, project: str) -> list[MemberView]:
        query = (
            select(MemberRow.principal, PrincipalRow.kind, MemberRow.role)
            .join(PrincipalRow, PrincipalRow.name == MemberRow.principal)
            .where(MemberRow.project == project)
            .order_by(*self._bytewise(MemberRow.principal))
        )
        with self._session() as s:
            return [
                MemberView(principal=name, kind=PrincipalKind(kind), role=Role(role))
                for name, kind, role in s.execute(query)
            ]

    def remove_member(self, project: str, principal: str) -> None:
        with self._session() as s:
            row = s.scalar(_member(project, principal))
            if row is None:
                raise NotFound(f"{principal!r} is no member of project {project!r}")
            self._changed(s)
            s.delete(row)

    def add_service_account(self, project: str, name: str, role: str) -> ServiceAccountView:
        now = utcnow()
        with self._locked() as s:
            if s.get(PrincipalRow, name) is not None:
                raise NameTaken("user or service account", project, name)
            self._changed(s)
            s.add(
                PrincipalRow(
                    name=name, kind=PrincipalKind.SERVICE_ACCOUNT, project=project, created_at=now
                )
            )
            s.flush()
            s.add(MemberRow(project=project, principal=name, role=role, created_at=now))
        return ServiceAccountView(name=name, project=project, role=Role(role), created_at=now)

    def list_service_accounts(self, project: str) -> list[ServiceAccountView]:
        query = (
            select(PrincipalRow.name, PrincipalRow.created_at, MemberRow.role)
            .outerjoin(
                MemberRow,
                (MemberRow.principal == PrincipalRow.name) & (MemberRow.project == project),
            )
            .where(PrincipalRow.project == project)
            .order_by(*self._bytewise(PrincipalRow.name))
        )
        with self._session() as s:
            return [
                ServiceAccountView(
                    name=name, project=project, role=Role(role or Role.VIEWER), created_at=_utc(at)
                )
                for name, at, role in s.execute(query)
            ]

    def remove_service_account(self, project: str, name: str) -> None:
        """Delete the service account with its memberships and tokens."""
        with self._session() as s:
            row = s.get(PrincipalRow, name)
            if row is None or row.project != project:
                raise NotFound(f"service account {name!r} not found in project {project!r}")
            self._changed(s)
            s.execute(delete(TokenRow).where(TokenRow.principal == name))
            s.execute(delete(MemberRow).where(MemberRow.principal == name))
            s.delete(row)

    # tokens

    def add_token(
        self,
        *,
        name: str,
        sha256: str,
        role: str,
        project: str | None = None,
        principal: str | None = None,
        expires_at: datetime | None = None,
    ) -> TokenInfo:
        with self._session() as s:
            if principal is not None and s.get(PrincipalRow, principal) is None:
                raise NotFound(f"no user or service account {principal!r}")
            self._changed(s)
            row = TokenRow(
                name=name,
                sha256=sha256,
                role=role,
                project=project,
                principal=principal,
                expires_at=expires_at,
                created_at=utcnow(),
            )
            s.add(row)
            s.flush()
            return _token(row)

    def count_tokens(self, project: str) -> int:
        with self._session() as s:
            query = select(func.count()).select_from(TokenRow).where(TokenRow.project == project)
            return int(s.scalar(query) or 0)

    def list_tokens(self, project: str) -> list[TokenInfo]:
        query = select(TokenRow).where(TokenRow.project == project).order_by(TokenRow.id)
        with self._session() as s:
            return [_token(row) for row in s.scalars(query)]

    def remove_token(self, project: str, token_id: int) -> None:
        with self._session() as s:
            row = s.scalar(
                select(TokenRow).where(TokenRow.project == project, TokenRow.id == token_id)
            )
            if row is None:
                raise NotFound(f"token {token_id} not found in project {project!r}")
            self._changed(s)
            s.delete(row)

    def principal_of(self, sha256: str, now: datetime) -> Principal | None:
        """Who a token with this digest acts as, or None if none such is valid now."""
        with self._session() as s:
            row = s.scalar(select(TokenRow).where(TokenRow.sha256 == sha256))
            if row is None or _expired(row, now):
                return None
            if row.role == INSTALLATION_ADMIN:
                return Principal(name=row.principal or row.name, is_installation_admin=True)
            assert row.project is not None
            owner_role = None
            if row.principal is not None:
                owner_role = s.scalar(
                    select(MemberRow.role).where(
                        MemberRow.project == row.project, MemberRow.principal == row.principal
                    )
                )
            allowed = token_permissions(
                row.role, owned=row.principal is not None, owner_role=owner_role
            )
            name = row.principal or f"token:{row.name}"
            return Principal(name=name, permissions={row.project: allowed})

    def call_grants(self, now: datetime) -> CallGrants:
        """The digests of the tokens that may call private routes: the installation
        admins' (every project) and, by project, the others' with their expiry."""
        owner_roles = select(MemberRow.project, MemberRow.principal, MemberRow.role)
        with self._session() as s:
            roles = {(p, who): role for p, who, role in s.execute(owner_roles)}
            admins: set[str] = set()
            by_project: dict[str, dict[str, float | None]] = {}
            for row in s.scalars(select(TokenRow)):
                if _expired(row, now):
                    continue
                if row.role == INSTALLATION_ADMIN:
                    admins.add(row.sha256)
                    continue
                assert row.project is not None
                owner_role = roles.get((row.project, row.principal or ""))
                allowed = token_permissions(
                    row.role, owned=row.principal is not None, owner_role=owner_role
                )
                if Permission.CALL in allowed:
                    expiry = _utc(row.expires_at).timestamp() if row.expires_at else None
                    by_project.setdefault(row.project, {})[row.sha256] = expiry
            return CallGrants(frozenset(admins), by_project)

    def replace_admin_token(self, sha256: str) -> None:
        with self._locked() as s:
            self._changed(s)
            s.execute(
                delete(TokenRow).where(
                    TokenRow.role == INSTALLATION_ADMIN, TokenRow.name == "admin"
                )
            )
            s.add(
                TokenRow(name="admin", sha256=sha256, role=INSTALLATION_ADMIN, created_at=utcnow())
            )

    # models

    def add_model(
        self,
        project: str,
        name: str,
        *,
        fmt: ModelFormat,
        sha256: str,
        size_bytes: int,
        metadata: dict[str, Any],
    ) -> ModelRecord:
        with self._locked() as s:
            newest = s.scalar(
                select(func.max(ModelRow.version)).where(
                    ModelRow.project == project, ModelRow.name == name
                )
            )
            row = ModelRow(
                project=project,
                name=name,
                version=(newest or 0) + 1,
                format=fmt,
                sha256=sha256,
                size_bytes=size_bytes,
                meta=metadata,
                created_at=utcnow(),
            )
            s.add(row)
            s.flush()
            return _model(row)

    def list_models(self, project: str, name: str | None = None) -> list[ModelRecord]:
        query = select(ModelRow).where(ModelRow.project == project)
        if name is not None:
            query = query.where(ModelRow.name == name)
        with self._session() as s:
            return [
                _model(r)
                for r in s.scalars(query.order_by(*self._bytewise(ModelRow.name), ModelRow.version))
            ]

    def get_model(self, project: str, name: str, version: int | None = None) -> ModelRecord:
        query = select(ModelRow).where(ModelRow.project == project, ModelRow.name == name)
        query = (
            query.where(ModelRow.version == version)
            if version is not None
            else query.order_by(ModelRow.version.desc()).limit(1)
        )
        with self._session() as s:
            row = s.scalar(query)
            if row is None:
                names = select(ModelRow.name).where(ModelRow.project == project).distinct()
                raise ModelNotFound(project, name, version, known=s.scalars(names))
            return _model(row)

    def remove_models(self, project: str, name: str, version: int | None = None) -> None:
        """Forget a model's versions (all, or one); the files are the caller's."""
        query = delete(ModelRow).where(ModelRow.project == project, ModelRow.name == name)
        if version is not None:
            query = query.where(ModelRow.version == version)
        with self._session() as s:
            s.execute(query)

    def is_model_file_used(self, sha256: str) -> bool:
        """True while any model version of any project has this content."""
        with self._session() as s:
            used = s.scalar(select(ModelRow.id).where(ModelRow.sha256 == sha256).limit(1))
            return used is not None

    # nodes

    def add_node(self, project: str, name: str, spec: NodeSpec, *, runtime: str) -> NodeRecord:
        now = utcnow()
        try:
            with self._session() as s:
                row = NodeRow(
                    change_seq=self._changed(s),
                    project=project,
                    name=name,
                    spec=self._sealed_spec(spec),
                    generation=1,
                    deleting=False,
                    reached_minimum=False,
                    crash_looping=False,
                    runtime=runtime,
                    created_at=now,
                    updated_at=now,
                )
                s.add(row)
                s.flush()
                return self._node(row)
        except IntegrityError:
            raise NameTaken("node", project, name) from None

    def list_nodes(
        self, project: str | None = None, *, after: str | None = None, limit: int | None = None
    ) -> list[NodeRecord]:
        """By project and name (byte by byte); with ``after`` (a node name, with
        ``project``) only the nodes named after it; at most ``limit``."""
        query = select(NodeRow).order_by(*self._bytewise(NodeRow.project, NodeRow.name))
        if project is not None:
            query = query.where(NodeRow.project == project)
        if after is not None:
            query = query.where(self._bytewise(NodeRow.name)[0] > after)
        if limit is not None:
            query = query.limit(limit)
        with self._session() as s:
            return [self._node(r) for r in s.scalars(query)]

    def get_node(self, project: str, name: str) -> NodeRecord:
        with self._session() as s:
            return self._node(self._node_row(s, project, name))

    def update_node_spec(
        self, project: str, name: str, spec: NodeSpec, *, repin: bool = False
    ) -> NodeRecord:
        """Replace a node's spec; the generation follows NodeSpec.generation_after.
        ``repin``: forget the pinned image (the spec names another one)."""
        with self._locked() as s:
            row = self._node_row(s, project, name)
            row.change_seq = self._changed(s)
            row.generation = spec.generation_after(self._spec(row), row.generation)
            row.spec = self._sealed_spec(spec)
            if repin:
                row.pinned_image = None
            row.updated_at = utcnow()
            s.flush()
            return self._node(row)

    def mark_node_deleting(self, project: str, name: str) -> NodeRecord:
        """The node is to go: the controller stops its instances, then removes it."""
        with self._session() as s:
            row = self._node_row(s, project, name)
            row.change_seq = self._changed(s)
            row.deleting, row.updated_at = True, utcnow()
            s.flush()
            return self._node(row)

    def set_node_suspended(self, project: str, name: str, *, suspended: bool) -> NodeRecord:
        """Suspend the node (the controller stops its instances) or resume it; resuming
        starts it afresh: Created until it reaches its minimum again."""
        with self._session() as s:
            row = self._node_row(s, project, name)
            row.change_seq = self._changed(s)
            row.suspended, row.updated_at = suspended, utcnow()
            if not suspended:
                row.reached_minimum, row.crash_looping, row.target_instances = False, False, None
            s.flush()
            return self._node(row)

    def set_node_state(
        self,
        project: str,
        name: str,
        *,
        reached_minimum: bool,
        message: str | None,
        crash_looping: bool,
        target_instances: int | None = None,
        suspended: bool = False,
    ) -> None:
        """Controller-owned columns; no audit event, no generation bump. ``suspended``:
        as the controller saw the node; if it was suspended or resumed since, nothing is
        written (a resume starts the node afresh, and a tick's older view must not undo
        that)."""
        with self._session() as s:
            row = s.scalar(select(NodeRow).where(NodeRow.project == project, NodeRow.name == name))
            if row is None or row.suspended != suspended:
                return
            state = (reached_minimum, message, crash_looping, target_instances)
            if (row.reached_minimum, row.message, row.crash_looping, row.target_instances) != state:
                row.change_seq = self._changed(s)
                (
                    row.reached_minimum,
                    row.message,
                    row.crash_looping,
                    row.target_instances,
                ) = state

    def pin_image(self, project: str, name: str, image: str) -> None:
        with self._session() as s:
            row = s.scalar(select(NodeRow).where(NodeRow.project == project, NodeRow.name == name))
            if row is not None:
                row.change_seq = self._changed(s)
                row.pinned_image = image

    def remove_node(self, project: str, name: str) -> None:
        """Forget a node, its instances' rows and its events, in one transaction."""
        self._specs.pop((project, name), None)
        with self._session() as s:
            self._changed(s, node_removed=True)
            s.execute(delete(NodeRow).where(NodeRow.project == project, NodeRow.name == name))
            s.execute(
                delete(InstanceRow).where(InstanceRow.project == project, InstanceRow.node == name)
            )
            s.execute(delete(EventRow).where(EventRow.project == project, EventRow.node == name))

    def _node(self, row: NodeRow) -> NodeRecord:
        return NodeRecord(
            project=row.project,
            name=row.name,
            spec=self._spec(row),
            generation=row.generation,
            deleting=row.deleting,
            reached_minimum=row.reached_minimum,
            message=row.message,
            crash_looping=row.crash_looping,
            created_at=_utc(row.created_at),
            updated_at=_utc(row.updated_at),
            pinned_image=row.pinned_image,
            target_instances=row.target_instances,
            runtime=row.runtime,
            suspended=row.suspended,
        )

    # secrets at rest

    def _sealed_spec(self, spec: NodeSpec) -> dict[str, Any]:
        """The spec as stored: its ``secret_env`` sealed."""
        data = spec.model_dump(mode="json")
        data["secret_env"] = self._sealer.seal(spec.secret_env)
        return data

    def _spec(self, row: NodeRow) -> NodeSpec:
        key = (row.project, row.name)
        cached = self._specs.get(key)
        if cached is not None and cached[0] == row.spec:
            return cached[1]
        stored = dict(row.spec)
        data = dict(stored)
        data["secret_env"] = self._open(data.get("secret_env") or {})
        spec = NodeSpec.model_validate(data)
        self._specs[key] = (stored, spec)
        return spec

    def _open(self, stored: Any) -> dict[str, str]:
        """A stored secret value: sealed text, or a mapping kept before values were sealed."""
        return self._sealer.open(stored) if is_sealed(stored) else dict(stored)

    def reseal_secrets(self, sealer: Sealer | None = None) -> int:
        """Seal every secret value and node ``secret_env`` again with ``sealer``'s first key
        (default: this store's), in one transaction, then use ``sealer`` from now on. Values
        kept before sealing are sealed too. Returns how many values were sealed."""
        target = sealer or self._sealer
        count = 0
        with self._locked() as s:
            for secret in s.scalars(select(SecretRow)):
                secret.value = target.seal(self._open(secret.value))
                count += 1
            for node in s.scalars(select(NodeRow)):
                node.change_seq = self._changed(s)
                spec = dict(node.spec)
                spec["secret_env"] = target.seal(self._open(spec.get("secret_env") or {}))
                node.spec = spec
                count += 1
        self._sealer = target
        return count

    def use_sealer(self, sealer: Sealer) -> None:
        """Seal and open with ``sealer`` from now on (every value must be sealed with its keys)."""
        self._sealer = sealer

    @staticmethod
    def _node_row(s: Session, project: str, name: str) -> NodeRow:
        row = s.scalar(select(NodeRow).where(NodeRow.project == project, NodeRow.name == name))
        if row is None:
            names = s.scalars(select(NodeRow.name).where(NodeRow.project == project))
            raise NodeNotFound(project, name, known=names)
        return row

    # aliases

    def add_alias(self, project: str, name: str, spec: AliasSpec) -> AliasRecord:
        now = utcnow()
        try:
            with self._session() as s:
                self._changed(s)
                row = AliasRow(
                    project=project,
                    name=name,
                    spec=spec.model_dump(mode="json"),
                    created_at=now,
                    updated_at=now,
                )
                s.add(row)
                s.flush()
                return _alias(row)
        except IntegrityError:
            raise NameTaken("alias", project, name) from None

    def list_aliases(self, project: str | None = None) -> list[AliasRecord]:
        query = select(AliasRow).order_by(*self._bytewise(AliasRow.project, AliasRow.name))
        if project is not None:
            query = query.where(AliasRow.project == project)
        with self._session() as s:
            return [_alias(r) for r in s.scalars(query)]

    def get_alias(self, project: str, name: str) -> AliasRecord:
        with self._session() as s:
            return _alias(self._alias_row(s, project, name))

    def update_alias_spec(self, project: str, name: str, spec: AliasSpec) -> AliasRecord:
        with self._session() as s:
            row = self._alias_row(s, project, name)
            self._changed(s)
            row.spec, row.updated_at = spec.model_dump(mode="json"), utcnow()
            s.flush()
            return _alias(row)

    def remove_alias(self, project: str, name: str) -> None:
        """Forget an alias and its rollout."""
        with self._session() as s:
            self._alias_row(s, project, name)
            self._changed(s)
            s.execute(delete(AliasRow).where(AliasRow.project == project, AliasRow.name == name))
            s.execute(
                delete(AliasRolloutRow).where(
                    AliasRolloutRow.project == project, AliasRolloutRow.alias == name
                )
            )

    def put_rollout(self, project: str, alias: str, state: RolloutState) -> RolloutRecord:
        """Store the alias's rollout state, in place of its previous rollout's."""
        with self._locked() as s:
            self._changed(s)
            row = s.scalar(self._rollout_query(project, alias))
            now = utcnow()
            if row is None:
                row = AliasRolloutRow(project=project, alias=alias, created_at=now)
                s.add(row)
            row.phase, row.state = state.phase, state.model_dump(mode="json")
            row.updated_at = now
            s.flush()
            return _rollout(row)

    def replace_rollout(
        self, project: str, alias: str, expected: RolloutState, state: RolloutState
    ) -> RolloutRecord | None:
        """apply_rollout, only if the stored rollout is still ``expected``; None when
        something else (an abort) was stored meanwhile."""
        with self.unit_of_work(), self._locked() as s:
            stored = s.scalar(self._rollout_query(project, alias))
            if stored is None or stored.state != expected.model_dump(mode="json"):
                return None
            return self.apply_rollout(project, alias, state)

    def apply_rollout(
        self, project: str, alias: str, state: RolloutState, *, actor: str | None = None
    ) -> RolloutRecord:
        """Store a rollout decision, give the alias the shares it stands for and, unless
        it holds, add its event (on the new node's timeline), as one unit: the gateway
        never sees a step the store does not remember."""
        with self.unit_of_work(), self._locked() as s:
            row = self._alias_row(s, project, alias)
            self._changed(s)
            spec = state.applied_to(AliasSpec.model_validate(row.spec))
            if spec.model_dump(mode="json") != row.spec:
                row.spec, row.updated_at = spec.model_dump(mode="json"), utcnow()
            kind = DECISION_EVENTS.get(state.action)
            if kind is not None:
                self.add_event(
                    project, node=state.plan.to_node, kind=kind, actor=actor,
                    message=f"alias {alias} rollout to {state.plan.to_node}: {state.why}",
                )  # fmt: skip
            return self.put_rollout(project, alias, state)

    def get_rollout(self, project: str, alias: str) -> RolloutRecord | None:
        """The alias's latest rollout, or None if it never had one."""
        with self._session() as s:
            row = s.scalar(self._rollout_query(project, alias))
            return None if row is None else _rollout(row)

    def running_rollouts(self) -> list[RolloutRecord]:
        query = select(AliasRolloutRow).where(AliasRolloutRow.phase == RolloutPhase.RUNNING)
        with self._session() as s:
            rows = s.scalars(
                query.order_by(*self._bytewise(AliasRolloutRow.project, AliasRolloutRow.alias))
            )
            return [_rollout(r) for r in rows]

    @staticmethod
    def _rollout_query(project: str, alias: str) -> Select[AliasRolloutRow]:
        return select(AliasRolloutRow).where(
            AliasRolloutRow.project == project, AliasRolloutRow.alias == alias
        )

    def aliases_using(self, project: str, node: str) -> list[str]:
        """The project's aliases that name ``node`` (a share, a mirror or a header route)."""
        return [a.name for a in self.list_aliases(project) if node in a.spec.node_names()]

    @staticmethod
    def _alias_row(s: Session, project: str, name: str) -> AliasRow:
        row = s.scalar(select(AliasRow).where(AliasRow.project == project, AliasRow.name == name))
        if row is None:
            names = s.scalars(select(AliasRow.name).where(AliasRow.project == project))
            raise AliasNotFound(project, name, known=names)
        return row

    # instances

    def upsert_instance(self, record: InstanceRecord) -> None:
        with self._locked() as s:
            row = s.get(InstanceRow, record.id) or InstanceRow(id=record.id)
            row.project, row.node, row.status = record.project, record.node, record.status
            row.since, row.endpoint, row.restarts = record.since, record.endpoint, record.restarts
            row.last_error, row.generation, row.runtime = (
                record.last_error,
                record.generation,
                record.runtime,
            )
            row.limits_applied = list(record.limits_applied)
            row.limits_not_applied = list(record.limits_not_applied)
            row.created_at = record.created_at
            row.port_endpoints = {str(p): url for p, url in record.port_endpoints.items()}
            row.pid, row.container_id = record.pid, record.container_id
            s.add(row)

    def remove_instance(self, instance_id: str) -> None:
        with self._session() as s:
            s.execute(delete(InstanceRow).where(InstanceRow.id == instance_id))

    def instance_runtime(self, instance_id: str) -> str | None:
        """The runtime an instance runs on, or None for an unknown instance."""
        with self._session() as s:
            return s.scalar(select(InstanceRow.runtime).where(InstanceRow.id == instance_id))

    def list_instances(
        self,
        project: str | None = None,
        node: str | None = None,
        *,
        nodes: Sequence[str] | None = None,
    ) -> list[InstanceRecord]:
        """``nodes``: only the instances of these nodes (of ``project``)."""
        query = select(InstanceRow).order_by(
            InstanceRow.created_at, *self._bytewise(InstanceRow.id)
        )
        if project is not None:
            query = query.where(InstanceRow.project == project)
        if node is not None:
            query = query.where(InstanceRow.node == node)
        if nodes is not None:
            query = query.where(InstanceRow.node.in_(nodes))
        with self._session() as s:
            return [_instance(r) for r in s.scalars(query)]

    # secrets

    def put_secret(self, project: str, name: str, value: dict[str, Any]) -> bool:
        """Create or replace a secret; True if it was created."""
        with self._locked() as s:
            row = s.scalar(
                select(SecretRow).where(SecretRow.project == project, SecretRow.name == name)
            )
            now = utcnow()
            if row is None:
                sealed = self._sealer.seal(value)
                s.add(
                    SecretRow(
                        project=project, name=name, value=sealed, created_at=now, updated_at=now
                    )
                )
                return True
            row.value, row.updated_at = self._sealer.seal(value), now
            return False

    def get_secret(self, project: str, name: str) -> dict[str, Any]:
        with self._session() as s:
            row = s.scalar(
                select(SecretRow).where(SecretRow.project == project, SecretRow.name == name)
            )
            if row is None:
                raise NotFound(f"secret {name!r} not found in project {project!r}")
            return self._open(row.value)

    def list_secrets(self, project: str) -> list[tuple[str, list[str], datetime]]:
        """(name, keys, updated_at) of each secret: never the values."""
        with self._session() as s:
            rows = s.scalars(
                select(SecretRow)
                .where(SecretRow.project == project)
                .order_by(*self._bytewise(SecretRow.name))
            )
            return [(r.name, sorted(self._open(r.value)), _utc(r.updated_at)) for r in rows]

    def delete_secret(self, project: str, name: str) -> None:
        self.get_secret(project, name)
        with self._session() as s:
            s.execute(delete(SecretRow).where(SecretRow.project == project, SecretRow.name == name))

    # events

    def add_event(
        self,
        project: str,
        *,
        kind: str,
        message: str,
        node: str | None = None,
        instance: str | None = None,
        actor: str | None = None,
    ) -> None:
        with self._session() as s:
            s.add(
                EventRow(
                    time=utcnow(),
                    project=project,
                    node=node,
                    instance=instance,
                    kind=kind,
                    message=message,
                    actor=actor,
                )
            )

    def list_events(
        self, project: str, node: str | None = None, *, limit: int = 100, after: int | None = None
    ) -> list[EventRecord]:
        """The newest ``limit`` events, oldest first; with ``after`` (an event id), the
        oldest ``limit`` events after it, so a reader that follows misses none."""
        query = select(EventRow).where(EventRow.project == project)
        if node is not None:
            query = query.where(EventRow.node == node)
        if after is not None:
            with self._session() as s:
                later = query.where(EventRow.id > after).order_by(EventRow.id).limit(limit)
                return [_event(r) for r in s.scalars(later)]
        with self._session() as s:
            rows: Sequence[EventRow] = s.scalars(
                query.order_by(EventRow.id.desc()).limit(limit)
            ).all()
            return [_event(r) for r in reversed(rows)]

    # the audit log

    def add_audit_entry(self, entry: AuditEntry, *, keep: int) -> None:
        """Keep ``entry`` (the store gives its id); the oldest beyond the newest ``keep``
        entries are dropped now and then."""
        fields = entry.model_dump(exclude={"id"})
        with self._session() as s:
            row = AuditRow(**{**fields, "outcome": str(entry.outcome)})
            s.add(row)
            s.flush()
            if row.id % AUDIT_PRUNE_EVERY == 0:
                s.execute(delete(AuditRow).where(AuditRow.id <= row.id - keep))

    def list_audit(self, query: AuditQuery) -> list[AuditEntry]:
        """Entries matching ``query``, newest first, at most ``query.limit``."""
        select_ = select(AuditRow)
        for column, value in (
            (AuditRow.project, query.project), (AuditRow.actor, query.actor),
            (AuditRow.action, query.action), (AuditRow.outcome, query.outcome),
        ):  # fmt: skip
            if value is not None:
                select_ = select_.where(column == str(value))
        if query.since is not None:
            select_ = select_.where(AuditRow.time >= query.since)
        if query.until is not None:
            select_ = select_.where(AuditRow.time < query.until)
        if query.before is not None:
            select_ = select_.where(AuditRow.id < query.before)
        with self._session() as s:
            rows = s.scalars(select_.order_by(AuditRow.id.desc()).limit(query.limit))
            return [_audit(r) for r in rows]

    # allowed configurations and quotas

    def get_project_limits(self, project: str) -> ProjectLimits:
        """The project's limits (none set: no limit)."""
        with self._session() as s:
            row = s.get(ProjectLimitsRow, project)
            return ProjectLimits() if row is None else _limits(row)

    def all_project_limits(self) -> dict[str, ProjectLimits]:
        """Every project that has limits, with them."""
        with self._session() as s:
            return {r.project: _limits(r) for r in s.scalars(select(ProjectLimitsRow))}

    def set_project_limits(self, project: str, limits: ProjectLimits) -> None:
        with self._locked() as s:
            self._changed(s)
            row = s.get(ProjectLimitsRow, project) or ProjectLimitsRow(project=project)
            for field, value in limits.model_dump().items():
                setattr(row, field, value)
            row.updated_at = utcnow()
            s.add(row)


WRITE_LOCK_KEY = 0x70696572  # "pier"
"""The PostgreSQL advisory lock that stands for the store's write lock."""


@contextmanager
def transaction(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction of ``sessions``; a failing store raises StoreUnavailable, named by
    the database's own reason and never by the statement or its values."""
    try:
        with sessions.begin() as session:
            yield session
    except STORE_FAILURES as exc:
        raise StoreUnavailable(store_failure_reason(exc)) from None


def take_write_lock(s: Session) -> None:
    """Hold the store's write lock until ``s``'s transaction ends (see Repository._locked);
    StoreUnavailable when it cannot be had within the store's timeout."""
    try:
        connection = s.connection()
        if connection.dialect.name == "postgresql":
            s.execute(select(func.pg_advisory_xact_lock(WRITE_LOCK_KEY)))
        elif connection.dialect.name == "sqlite":
            dbapi = connection.connection.dbapi_connection
            if dbapi is not None and not dbapi.in_transaction:  # else it writes already
                connection.exec_driver_sql("BEGIN IMMEDIATE")
    except STORE_FAILURES as exc:
        raise StoreUnavailable(store_failure_reason(exc)) from None


def store_failure_reason(exc: Exception) -> str:
    """The database's first line about ``exc`` ("database is locked"), without the SQL."""
    orig = getattr(exc, "orig", None)
    text = str(orig) if orig is not None else type(exc).__name__
    return (text.strip().splitlines() or [type(exc).__name__])[0]


def _model(row: ModelRow) -> ModelRecord:
    return ModelRecord(
        project=row.project,
        name=row.name,
        version=row.version,
        format=ModelFormat(row.format),
        sha256=row.sha256,
        size_bytes=row.size_bytes,
        created_at=_utc(row.created_at),
        metadata=row.meta or {},
    )


def _alias(row: AliasRow) -> AliasRecord:
    return AliasRecord(
        project=row.project,
        name=row.name,
        spec=AliasSpec.model_validate(row.spec),
        created_at=_utc(row.created_at),
        updated_at=_utc(row.updated_at),
    )


def _rollout(row: AliasRolloutRow) -> RolloutRecord:
    return RolloutRecord(
        project=row.project,
        alias=row.alias,
        state=RolloutState.model_validate(row.state),
        updated_at=_utc(row.updated_at),
    )


def _instance(row: InstanceRow) -> InstanceRecord:
    return InstanceRecord(
        id=row.id,
        project=row.project,
        node=row.node,
        status=InstanceStatus(row.status),
        since=_utc(row.since),
        endpoint=row.endpoint,
        restarts=row.restarts,
        last_error=row.last_error,
        generation=row.generation,
        runtime=row.runtime,
        limits_applied=tuple(row.limits_applied),
        limits_not_applied=tuple(row.limits_not_applied),
        created_at=_utc(row.created_at),
        port_endpoints={int(p): url for p, url in (row.port_endpoints or {}).items()},
        pid=row.pid,
        container_id=row.container_id,
    )


def _event(row: EventRow) -> EventRecord:
    return EventRecord(
        id=row.id,
        time=_utc(row.time),
        project=row.project,
        node=row.node,
        instance=row.instance,
        kind=row.kind,
        message=row.message,
        actor=row.actor,
    )


def _member(project: str, principal: str) -> Select[MemberRow]:
    return select(MemberRow).where(MemberRow.project == project, MemberRow.principal == principal)


def _expired(row: TokenRow, now: datetime) -> bool:
    return row.expires_at is not None and _utc(row.expires_at) <= now


def _token(row: TokenRow) -> TokenInfo:
    assert row.project is not None
    return TokenInfo(
        id=row.id,
        name=row.name,
        project=row.project,
        role=Role(row.role),
        principal=row.principal,
        created_at=_utc(row.created_at),
        expires_at=_utc(row.expires_at) if row.expires_at else None,
    )


def _audit(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        id=row.id, time=_utc(row.time), actor=row.actor, project=row.project,
        action=row.action, target=row.target, method=row.method, path=row.path,
        client=row.client, status=row.status, outcome=AuditOutcome(row.outcome),
        error=row.error,
    )  # fmt: skip


def _limits(row: ProjectLimitsRow) -> ProjectLimits:
    return ProjectLimits(
        configurations=row.configurations, max_instances=row.max_instances,
        max_vcpus=row.max_vcpus, max_memory_bytes=row.max_memory_bytes, max_gpus=row.max_gpus,
    )  # fmt: skip
