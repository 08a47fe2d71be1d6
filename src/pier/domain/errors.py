"""The PierError tree. Each class carries its error code, its type and its HTTP status.

An error reaches a client as ``{"error": {"code", "type", "message", "field"?}}``:
``code`` is the category (stable, what most callers check), ``type`` the specific class
within it. The SDK maps ``type`` (else ``code``, else the HTTP status) back to these
classes, so SDK users catch ``pier.NodeNotFound`` or ``pier.NotFound`` alike.

    class                         code                 type                     HTTP
    PierError                     internal             internal                  500
    ├── BadRequest                bad_request          bad_request               400
    ├── Unauthorized              unauthorized         unauthorized              401
    ├── Forbidden                 forbidden            forbidden                 403
    │   └── QuotaExceeded         forbidden            quota_exceeded            403
    ├── NotFound                  not_found            not_found                 404
    │   ├── ProjectNotFound       not_found            project_not_found         404
    │   ├── NodeNotFound          not_found            node_not_found            404
    │   ├── ModelNotFound         not_found            model_not_found           404
    │   ├── AliasNotFound         not_found            alias_not_found           404
    │   ├── RolloutNotFound       not_found            rollout_not_found         404
    │   └── InstanceNotFound      not_found            instance_not_found        404
    ├── MethodNotAllowed          method_not_allowed   method_not_allowed        405
    ├── Conflict                  conflict             conflict                  409
    │   ├── NameTaken             conflict             name_taken                409
    │   ├── ModelInUse            conflict             model_in_use              409
    │   ├── NodeInUse             conflict             node_in_use               409
    │   ├── NodeDeleting          conflict             node_deleting             409
    │   └── RolloutRunning        conflict             rollout_running           409
    ├── BodyTooLarge              body_too_large       body_too_large            413
    ├── InvalidSpec               invalid_spec         invalid_spec              422
    │   ├── ConfigurationNotFound invalid_spec         configuration_not_found   422
    │   └── ConfigurationNotAllowed invalid_spec       configuration_not_allowed 422
    ├── RuntimeUnavailable        runtime_unavailable  runtime_unavailable       503
    ├── StoreUnavailable          store_unavailable    store_unavailable         503
    └── IllegalTransition         internal             illegal_transition        500

BadRequest: the body is not JSON. NotFound itself: an unknown path. MethodNotAllowed
answers carry ``Allow``. InvalidSpec has ``.field``, the offending field's dotted path
(``min_instances``, ``health.path``). StoreUnavailable is temporary and carries
``Retry-After``. IllegalTransition is a bug in pier, never the user's error.

Raised by the SDK itself (``pier.client``), never sent by the server:

    ├── ControlPlaneUnreachable   unreachable          control_plane_unreachable 503
    ├── GatewayUnreachable        unreachable          gateway_unreachable       503
    └── NodeNotHealthy            internal             node_not_healthy           -
        ├── NodeCrashLooping      internal             node_crash_looping         -
        └── WaitTimedOut          internal             wait_timed_out             -

Any other failure is a plain ``PierError`` (code and type ``internal``, 500). Messages are
built from arguments here; callers never format them. A name that is not found is
compared with the ``known`` names, so a typo gets "did you mean 'iris'?".
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any, ClassVar, Self


class PierError(Exception):
    """Base of every error pier reports to a user."""

    code: ClassVar[str] = "internal"
    """The category: what most callers check (``not_found``, ``invalid_spec``...)."""
    error_type: ClassVar[str] = "internal"
    """This class within its category (``node_not_found``): unique in the tree."""
    http_status: ClassVar[int] = 500
    retry_after_s: ClassVar[int | None] = None
    """Sent as ``Retry-After`` when set: the failure is temporary."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "type": self.error_type, "message": self.message}

    @classmethod
    def from_wire(cls, message: str, *, field: str | None = None) -> Self:
        """The error a client rebuilds from a JSON error body (no constructor arguments:
        the server already built the message)."""
        exc = cls.__new__(cls)
        PierError.__init__(exc, message)
        return exc


class BadRequest(PierError):
    """The request body is not what the route reads at all (not JSON)."""

    code = "bad_request"
    error_type = "bad_request"
    http_status = 400


class Unauthorized(PierError):
    code = "unauthorized"
    error_type = "unauthorized"
    http_status = 401

    def __init__(self, message: str = "missing or invalid bearer token") -> None:
        super().__init__(message)


class Forbidden(PierError):
    code = "forbidden"
    error_type = "forbidden"
    http_status = 403


class QuotaExceeded(Forbidden):
    """A change would take the project past a quota; ``quota`` names it (max_vcpus...)."""

    error_type = "quota_exceeded"
    quota: str | None = None

    def __init__(self, project: str, quota: str, message: str) -> None:
        super().__init__(f"project {project!r} quota {quota} reached: {message}")
        self.quota = quota

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "quota": self.quota}


class NotFound(PierError):
    code = "not_found"
    error_type = "not_found"
    http_status = 404


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """'; did you mean 'iris'?' for the known name closest to ``name``, or ''."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close and close[0] != name else ""


class NodeNotFound(NotFound):
    error_type = "node_not_found"

    def __init__(self, project: str, node: str, *, known: Iterable[str] = ()) -> None:
        """``known``: the project's node names, for a suggestion."""
        super().__init__(
            f"node {node!r} not found in project {project!r}{did_you_mean(node, known)}"
        )


class ModelNotFound(NotFound):
    error_type = "model_not_found"

    def __init__(
        self, project: str, model: str, version: int | None = None, *, known: Iterable[str] = ()
    ) -> None:
        """``known``: the project's model names, for a suggestion."""
        what = f"model {model!r}" if version is None else f"model {model!r} version {version}"
        super().__init__(f"{what} not found in project {project!r}{did_you_mean(model, known)}")


class AliasNotFound(NotFound):
    error_type = "alias_not_found"

    def __init__(self, project: str, alias: str, *, known: Iterable[str] = ()) -> None:
        """``known``: the project's alias names, for a suggestion."""
        super().__init__(
            f"alias {alias!r} not found in project {project!r}{did_you_mean(alias, known)}"
        )


class RolloutNotFound(NotFound):
    error_type = "rollout_not_found"

    def __init__(self, project: str, alias: str) -> None:
        super().__init__(
            f"alias {alias!r} in project {project!r} has had no rollout "
            f"(start one: pier alias rollout {alias} --to NODE ...)"
        )


class ProjectNotFound(NotFound):
    error_type = "project_not_found"

    def __init__(self, project: str) -> None:
        super().__init__(f"project {project!r} not found")


class InstanceNotFound(NotFound):
    error_type = "instance_not_found"

    def __init__(self, node: str, instance: str) -> None:
        super().__init__(f"instance {instance!r} not found in node {node!r}")


class MethodNotAllowed(PierError):
    """The path exists, the method does not; ``Allow`` lists the methods it has."""

    code = "method_not_allowed"
    error_type = "method_not_allowed"
    http_status = 405


class Conflict(PierError):
    code = "conflict"
    error_type = "conflict"
    http_status = 409


class NameTaken(Conflict):
    error_type = "name_taken"

    def __init__(self, kind: str, project: str, name: str) -> None:
        super().__init__(f"{kind} {name!r} already exists in project {project!r}")


class ModelInUse(Conflict):
    error_type = "model_in_use"

    def __init__(self, project: str, model: str, version: int | None, nodes: list[str]) -> None:
        what = f"model {model!r}" if version is None else f"model {model!r} version {version}"
        used_by = ", ".join(repr(node) for node in nodes)
        super().__init__(
            f"{what} is in use by node {used_by} in project {project!r}; "
            "delete the node or move it to another model first"
        )


class NodeInUse(Conflict):
    """A node an alias still uses cannot be deleted: the alias would lose its traffic."""

    error_type = "node_in_use"

    def __init__(self, project: str, node: str, aliases: list[str]) -> None:
        used_by = ", ".join(repr(alias) for alias in aliases)
        super().__init__(
            f"node {node!r} is in use by alias {used_by} in project {project!r}; "
            "set the alias to other nodes first (pier alias set)"
        )


class NodeDeleting(Conflict):
    """The node is being deleted: it cannot be suspended or resumed any more."""

    error_type = "node_deleting"

    def __init__(self, project: str, node: str, action: str) -> None:
        super().__init__(
            f"node {node!r} in project {project!r} is being deleted: it cannot be {action}"
        )


class RolloutRunning(Conflict):
    """An alias runs one rollout at a time."""

    error_type = "rollout_running"

    def __init__(self, project: str, alias: str, to_node: str) -> None:
        super().__init__(
            f"alias {alias!r} in project {project!r} is rolling out to {to_node!r}; "
            f"wait for it to end or abort it (pier alias rollout {alias} --abort)"
        )


class InvalidSpec(PierError):
    """A user-supplied value is wrong; ``field`` is its dotted path (``min_instances``)."""

    code = "invalid_spec"
    error_type = "invalid_spec"
    http_status = 422

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "field": self.field}

    @classmethod
    def from_wire(cls, message: str, *, field: str | None = None) -> Self:
        exc = super().from_wire(message)
        exc.field = field or "spec"
        return exc


class ConfigurationNotFound(InvalidSpec):
    error_type = "configuration_not_found"

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(
            "configuration", f"unknown configuration {name!r}; choose one of {', '.join(known)}"
        )


class ConfigurationNotAllowed(InvalidSpec):
    error_type = "configuration_not_allowed"

    def __init__(self, project: str, name: str, allowed: list[str]) -> None:
        choices = ", ".join(allowed) if allowed else "none"
        super().__init__(
            "configuration",
            f"configuration {name!r} is not allowed in project {project!r}; it allows: {choices}",
        )


class BodyTooLarge(PierError):
    """Over a size limit; ``setting`` names the setting that raises it, when there is one."""

    code = "body_too_large"
    error_type = "body_too_large"
    http_status = 413
    limit_bytes: int | None = None
    setting: str | None = None

    def __init__(
        self, limit_bytes: int, *, what: str = "request body", setting: str | None = None
    ) -> None:
        message = f"{what} is over the limit of {limit_bytes} bytes"
        if setting is not None:
            message += f"; the setting {setting} raises it"
        super().__init__(message)
        self.limit_bytes = limit_bytes
        self.setting = setting

    def to_dict(self) -> dict[str, Any]:
        extra = {"limit_bytes": self.limit_bytes, "setting": self.setting}
        return {**super().to_dict(), **{k: v for k, v in extra.items() if v is not None}}


class RuntimeUnavailable(PierError):
    code = "runtime_unavailable"
    error_type = "runtime_unavailable"
    http_status = 503


class StoreUnavailable(PierError):
    """The store cannot be written or read right now (locked past the busy timeout,
    read-only, disk full, database unreachable). Temporary: pier keeps running and the
    same request succeeds once the store is back."""

    code = "store_unavailable"
    error_type = "store_unavailable"
    http_status = 503
    retry_after_s = 1

    def __init__(self, reason: str) -> None:
        super().__init__(f"the store is unavailable ({reason}); try again shortly")
        self.reason = reason

    @classmethod
    def from_wire(cls, message: str, *, field: str | None = None) -> Self:
        exc = super().from_wire(message)
        exc.reason = message
        return exc


class IllegalTransition(PierError):
    """An instance status move outside the table: a bug in pier, never user error."""

    error_type = "illegal_transition"

    def __init__(self, current: str, new: str) -> None:
        super().__init__(f"illegal instance status transition {current} -> {new}")


ERRORS_BY_CODE: dict[str, type[PierError]] = {
    cls.code: cls
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        Conflict,
        InvalidSpec,
        BodyTooLarge,
        RuntimeUnavailable,
        StoreUnavailable,
        PierError,
    )
}
"""Most general class per code, for clients mapping a JSON error back to an exception."""

_SPECIFIC: tuple[type[PierError], ...] = (
    *ERRORS_BY_CODE.values(),
    ProjectNotFound,
    NodeNotFound,
    ModelNotFound,
    AliasNotFound,
    RolloutNotFound,
    InstanceNotFound,
    NameTaken,
    ModelInUse,
    NodeInUse,
    NodeDeleting,
    RolloutRunning,
    ConfigurationNotFound,
    ConfigurationNotAllowed,
    QuotaExceeded,
    IllegalTransition,
)
ERRORS_BY_TYPE: dict[str, type[PierError]] = {cls.error_type: cls for cls in _SPECIFIC}
"""Each class the server sends, by its ``type``: the most specific class for an error."""
