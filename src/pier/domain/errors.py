"""The PierError tree. Each class carries its error code and HTTP status.

    PierError                 code                  HTTP
    ├── Unauthorized          unauthorized          401
    ├── Forbidden             forbidden             403
    ├── NotFound              not_found             404
    │   ├── NodeNotFound, ModelNotFound, AliasNotFound, ConfigurationNotFound
    │   └── InstanceNotFound
    ├── Conflict              conflict              409
    │   └── NameTaken, ModelInUse
    ├── InvalidSpec           invalid_spec          422   .field names the offending field
    ├── BodyTooLarge          body_too_large        413
    ├── RuntimeUnavailable    runtime_unavailable   503
    ├── StoreUnavailable      store_unavailable     503   with Retry-After; pier keeps running
    └── IllegalTransition     internal              500   a pier bug

Messages are built from arguments here; callers never format them. The client maps
``code`` back to these classes, so SDK users catch ``pier.NodeNotFound``. A name that is
not found is compared with the ``known`` names, so a typo gets "did you mean 'iris'?".
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any, ClassVar


class PierError(Exception):
    """Base of every error pier reports to a user."""

    code: ClassVar[str] = "internal"
    http_status: ClassVar[int] = 500
    retry_after_s: ClassVar[int | None] = None
    """Sent as ``Retry-After`` when set: the failure is temporary."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


class Unauthorized(PierError):
    code = "unauthorized"
    http_status = 401

    def __init__(self, message: str = "missing or invalid bearer token") -> None:
        super().__init__(message)


class Forbidden(PierError):
    code = "forbidden"
    http_status = 403


class NotFound(PierError):
    code = "not_found"
    http_status = 404


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """'; did you mean 'iris'?' for the known name closest to ``name``, or ''."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close and close[0] != name else ""


class NodeNotFound(NotFound):
    def __init__(self, project: str, node: str, *, known: Iterable[str] = ()) -> None:
        """``known``: the project's node names, for a suggestion."""
        super().__init__(
            f"node {node!r} not found in project {project!r}{did_you_mean(node, known)}"
        )


class ModelNotFound(NotFound):
    def __init__(
        self, project: str, model: str, version: int | None = None, *, known: Iterable[str] = ()
    ) -> None:
        """``known``: the project's model names, for a suggestion."""
        what = f"model {model!r}" if version is None else f"model {model!r} version {version}"
        super().__init__(f"{what} not found in project {project!r}{did_you_mean(model, known)}")


class AliasNotFound(NotFound):
    def __init__(self, project: str, alias: str) -> None:
        super().__init__(f"alias {alias!r} not found in project {project!r}")


class ProjectNotFound(NotFound):
    def __init__(self, project: str) -> None:
        super().__init__(f"project {project!r} not found")


class InstanceNotFound(NotFound):
    def __init__(self, node: str, instance: str) -> None:
        super().__init__(f"instance {instance!r} not found in node {node!r}")


class Conflict(PierError):
    code = "conflict"
    http_status = 409


class NameTaken(Conflict):
    def __init__(self, kind: str, project: str, name: str) -> None:
        super().__init__(f"{kind} {name!r} already exists in project {project!r}")


class ModelInUse(Conflict):
    def __init__(self, project: str, model: str, version: int | None, nodes: list[str]) -> None:
        what = f"model {model!r}" if version is None else f"model {model!r} version {version}"
        used_by = ", ".join(repr(node) for node in nodes)
        super().__init__(
            f"{what} is in use by node {used_by} in project {project!r}; "
            "delete the node or move it to another model first"
        )


class InvalidSpec(PierError):
    """A user-supplied value is wrong; ``field`` is its dotted path (``min_instances``)."""

    code = "invalid_spec"
    http_status = 422

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "field": self.field}


class ConfigurationNotFound(InvalidSpec):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(
            "configuration", f"unknown configuration {name!r}; choose one of {', '.join(known)}"
        )


class BodyTooLarge(PierError):
    """Over a size limit; ``setting`` names the setting that raises it, when there is one."""

    code = "body_too_large"
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
    http_status = 503


class StoreUnavailable(PierError):
    """The store cannot be written or read right now (locked past the busy timeout,
    read-only, disk full, database unreachable). Temporary: pier keeps running and the
    same request succeeds once the store is back."""

    code = "store_unavailable"
    http_status = 503
    retry_after_s = 1

    def __init__(self, reason: str) -> None:
        super().__init__(f"the store is unavailable ({reason}); try again shortly")
        self.reason = reason


class IllegalTransition(PierError):
    """An instance status move outside the table: a bug in pier, never user error."""

    def __init__(self, current: str, new: str) -> None:
        super().__init__(f"illegal instance status transition {current} -> {new}")


ERRORS_BY_CODE: dict[str, type[PierError]] = {
    cls.code: cls
    for cls in (
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        InvalidSpec,
        BodyTooLarge,
        RuntimeUnavailable,
        StoreUnavailable,
        PierError,
    )
}
"""Most general class per code, for clients mapping a JSON error back to an exception."""
