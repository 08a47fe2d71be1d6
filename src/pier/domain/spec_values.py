"""The checked strings a NodeSpec and a secret are made of, and their limits.

Every string a user gives that later reaches a process (argv, environment), an HTTP
request line (health and metrics paths), the container engine (image references) or a
registry (credentials) is checked here, so a bad value is a 422 naming its field rather
than a failure deep in a runtime.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Final

from pydantic import AfterValidator, Field

from pier.domain.errors import InvalidSpec

MAX_PATH_CHARS: Final = 1024
"""Health check and metrics paths (and gRPC service names)."""
MAX_ENV_ENTRIES: Final = 256
"""Entries in ``env`` and ``secret_env`` together."""
MAX_ENV_BYTES: Final = 64 * 1024
"""UTF-8 bytes of the names and values in ``env`` and ``secret_env`` together."""
MAX_ARGV_ITEMS: Final = 256
"""Items in ``command``, and in ``args``."""
MAX_ARG_CHARS: Final = 8192
"""Characters in one item of ``command`` or ``args``."""
MAX_IMAGE_NAME_CHARS: Final = 255
"""The repository name of an image reference, registry included (the registry's limit)."""
MAX_SECRET_ENTRIES: Final = 64
MAX_SECRET_KEY_CHARS: Final = 128
MAX_SECRET_BYTES: Final = 64 * 1024
"""UTF-8 bytes of a secret's keys and values together."""

ENV_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
HTTP_PATH: Final = re.compile(r"/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*", re.ASCII)
"""An absolute path (and query) of RFC 3986 characters: no spaces, controls or '#'."""
GRPC_SERVICE: Final = re.compile(r"[A-Za-z0-9_.\-/]*", re.ASCII)
SECRET_KEY: Final = re.compile(r"[A-Za-z0-9_.\-]+", re.ASCII)


def _image_reference_pattern() -> re.Pattern[str]:
    """The Docker reference grammar (distribution/reference):
    ``[host[:port]/]path-component[/path-component...][:tag][@algorithm:hex]``."""
    alphanumeric = r"[a-z0-9]+"
    separator = r"(?:[._]|__|-+)"
    path_component = rf"{alphanumeric}(?:{separator}{alphanumeric})*"
    domain_component = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
    host = rf"(?:{domain_component}(?:\.{domain_component})*|\[[a-fA-F0-9:]+\])"
    domain = rf"{host}(?::[0-9]+)?"
    name = rf"(?P<name>(?:{domain}/)?{path_component}(?:/{path_component})*)"
    tag = r"[\w][\w.-]{0,127}"
    digest = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
    return re.compile(rf"{name}(?::{tag})?(?:@{digest})?", re.ASCII)


IMAGE_REFERENCE: Final = _image_reference_pattern()
IMAGE_ID: Final = re.compile(r"sha256:[0-9a-f]{64}", re.ASCII)
"""An image the engine has, by its ID (what pier pins an image with no registry to)."""


class FieldError(ValueError):
    """A bad value inside a pydantic validator, naming its field by dotted path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def image_reference(value: str) -> str:
    """``value`` if it is an image reference the engine can pull or run."""
    if IMAGE_ID.fullmatch(value):
        return value
    match = IMAGE_REFERENCE.fullmatch(value)
    if match is None:
        raise ValueError(
            f"{value[:300]!r} is not an image reference: use [REGISTRY[:PORT]/]NAME[:TAG]"
            "[@sha256:DIGEST], with a lowercase NAME (e.g. 127.0.0.1:5000/team/app:1.2)"
        )
    if len(match["name"]) > MAX_IMAGE_NAME_CHARS:
        raise ValueError(f"the image name is over {MAX_IMAGE_NAME_CHARS} characters")
    return value


def http_path(value: str) -> str:
    """``value`` if it can go into an HTTP request line as the path."""
    if len(value) > MAX_PATH_CHARS:
        raise ValueError(f"the path is over {MAX_PATH_CHARS} characters")
    if not value.startswith("/"):
        raise ValueError("an HTTP path must start with '/'")
    if not HTTP_PATH.fullmatch(value):
        raise ValueError(
            "the path may hold only URL characters (no spaces, control characters, '#' "
            "or non-ASCII letters: percent-encode them)"
        )
    return value


def grpc_service(value: str) -> str:
    """``value`` if it is a gRPC service name ("" is the whole server)."""
    if len(value) > MAX_PATH_CHARS:
        raise ValueError(f"the service name is over {MAX_PATH_CHARS} characters")
    if not GRPC_SERVICE.fullmatch(value):
        raise ValueError("a gRPC service name holds letters, digits, '_', '.', '-' and '/'")
    return value


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be handed to a process or put into a request, or None."""
    if "\x00" in value:
        return "NUL characters cannot be passed to a process"
    try:
        value.encode()
    except UnicodeEncodeError:
        return "the text is not valid Unicode (a lone surrogate)"
    return None


def _process_text(value: str) -> str:
    problem = text_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


ImageReference = Annotated[str, AfterValidator(image_reference)]


PLACEMENT: Final = re.compile(r"[A-Za-z][\w.-]{0,200}\s*(==|!=)\s*[\w.:/*-]{1,200}")
"""A Docker Swarm placement constraint: ATTRIBUTE==VALUE or ATTRIBUTE!=VALUE."""


def placement_constraint(value: str) -> str:
    if not PLACEMENT.fullmatch(value):
        raise ValueError(
            f"{value[:100]!r} is not a placement constraint: write ATTRIBUTE==VALUE or "
            "ATTRIBUTE!=VALUE, e.g. node.labels.gpu==true"
        )
    return value


PlacementConstraint = Annotated[str, AfterValidator(placement_constraint)]
Argument = Annotated[str, Field(max_length=MAX_ARG_CHARS), AfterValidator(_process_text)]
Argv = Annotated[list[Argument], Field(max_length=MAX_ARGV_ITEMS)]


def check_environment(field: str, env: Mapping[str, str]) -> None:
    """Names are POSIX-style, values hold no NUL; FieldError names the bad entry."""
    for key, value in env.items():
        if not ENV_NAME.fullmatch(key):
            raise FieldError(
                field,
                f"{key[:100]!r} is not a valid environment variable name: use letters, "
                "digits and '_', not starting with a digit",
            )
        if (problem := text_problem(value)) is not None:
            raise FieldError(f"{field}.{key}", problem)


def check_environment_size(env: Mapping[str, str], secret_env: Mapping[str, str]) -> None:
    """``env`` and ``secret_env`` together stay under MAX_ENV_ENTRIES and MAX_ENV_BYTES;
    the field named is the one that takes them over."""
    if len(env) > MAX_ENV_ENTRIES or len(env) + len(secret_env) > MAX_ENV_ENTRIES:
        field = "env" if len(env) > MAX_ENV_ENTRIES else "secret_env"
        raise FieldError(
            field, f"env and secret_env may hold at most {MAX_ENV_ENTRIES} variables together"
        )
    env_bytes = _utf8_size(env)
    if env_bytes + _utf8_size(secret_env) > MAX_ENV_BYTES:
        field = "env" if env_bytes > MAX_ENV_BYTES else "secret_env"
        raise FieldError(
            field, f"env and secret_env may hold at most {MAX_ENV_BYTES} bytes together"
        )


def check_secret_value(value: Mapping[str, str]) -> None:
    """A secret's keys are short names, its values hold no NUL, and it stays small."""
    if not value:
        raise InvalidSpec("value", "a secret is a non-empty map of strings")
    if len(value) > MAX_SECRET_ENTRIES:
        raise InvalidSpec("value", f"a secret holds at most {MAX_SECRET_ENTRIES} keys")
    for key, item in value.items():
        if len(key) > MAX_SECRET_KEY_CHARS or not SECRET_KEY.fullmatch(key):
            raise InvalidSpec(
                "value",
                f"{key[:100]!r} is not a valid secret key: use 1-{MAX_SECRET_KEY_CHARS} "
                "letters, digits, '_', '.' and '-'",
            )
        if (problem := text_problem(item)) is not None:
            raise InvalidSpec(f"value.{key}", problem)
    if _utf8_size(value) > MAX_SECRET_BYTES:
        raise InvalidSpec("value", f"a secret holds at most {MAX_SECRET_BYTES} bytes")


def _utf8_size(env: Mapping[str, str]) -> int:
    return sum(len(k.encode()) + len(v.encode()) for k, v in env.items())
