"""Ids and name validation shared by every layer."""

from __future__ import annotations

import re
from typing import NamedTuple, NewType

from pier.domain.errors import InvalidSpec

ProjectName = NewType("ProjectName", str)
NodeName = NewType("NodeName", str)
ModelName = NewType("ModelName", str)
AliasName = NewType("AliasName", str)
InstanceId = NewType("InstanceId", str)

NAME_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
"""DNS-label style, so a name is valid in a URL path, a container label and a pod name."""

MODEL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$")
"""Triton's rules for a model name (letters, digits, '_', '-', '.'), as it appears in
``/v2/models/{name}``; not starting with '.' or '-'. A model's name is no DNS label: it
names no container or host, and its files are stored by content hash."""
MODEL_NAME_RULE = "use 1-63 letters, digits, '_', '-' and '.', starting with a letter, digit or '_'"

DEFAULT_PROJECT = ProjectName("default")

MAX_ID = 2**31 - 1
"""The largest id or model version there can be (the store's id columns are 32-bit
integers on PostgreSQL): the upper bound of every id or version a request may name."""


def validate_name(value: str, *, field: str) -> str:
    """Return ``value`` if it is a valid pier name, else raise InvalidSpec naming ``field``."""
    if not NAME_PATTERN.match(value):
        raise InvalidSpec(
            field,
            f"{value!r} is not a valid name: use 1-63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit",
        )
    return value


def validate_model_name(value: str, *, field: str) -> str:
    """Return ``value`` if it is a valid model name, else raise InvalidSpec naming ``field``."""
    if not MODEL_NAME_PATTERN.fullmatch(value):
        raise InvalidSpec(field, f"{value[:100]!r} is not a valid model name: {MODEL_NAME_RULE}")
    return value


class NodeKey(NamedTuple):
    """A node's identity across pier: project and node name. A tuple, so that hashing
    and comparing one (the controller's maps are keyed by it) runs in C."""

    project: ProjectName
    node: NodeName

    def __str__(self) -> str:
        return f"{self.project}/{self.node}"

    @classmethod
    def parse(cls, text: str) -> NodeKey:
        project, _, node = text.partition("/")
        return cls(ProjectName(project), NodeName(node))
