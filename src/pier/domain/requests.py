"""What the REST API takes: the bodies of requests that create or change things."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from pier.domain.aliases import AliasSpec
from pier.domain.merge_patch import PATCH_RULE, patch_model
from pier.domain.names import NAME_PATTERN
from pier.domain.roles import Role
from pier.domain.specs import NodeSpec

if TYPE_CHECKING:
    NodeSpecPatch = BaseModel
    AliasSpecPatch = BaseModel
else:
    NodeSpecPatch = patch_model(NodeSpec)
    """A merge patch of a NodeSpec (see pier.domain.merge_patch)."""
    AliasSpecPatch = patch_model(AliasSpec)
    """A merge patch of an AliasSpec."""

Name = Annotated[
    str,
    Field(
        description="1-63 lowercase letters, digits and '-', starting and ending with a "
        "letter or digit.",
        json_schema_extra={"pattern": NAME_PATTERN.pattern},
    ),
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class NodeCreate(_Body):
    """A new node: its name and spec."""

    name: Name
    spec: NodeSpec


class NodeUpdate(_Body):
    spec: NodeSpecPatch = Field(description=f"The fields to change. {PATCH_RULE}")

    def changes(self) -> dict[str, Any]:
        """The patch as JSON, with its explicit nulls (they remove a field)."""
        patch: dict[str, Any] = self.spec.model_dump(mode="json", exclude_unset=True)
        return patch


class SecretPut(_Body):
    value: Annotated[dict[str, str], Field(json_schema_extra={"minProperties": 1})]
    """The secret's keys and values (e.g. username and password); never shown back."""


class AliasCreate(_Body):
    """A new alias: its name and spec."""

    name: Name
    spec: AliasSpec


class AliasPut(_Body):
    spec: AliasSpec
    """The alias's whole new spec: what it leaves out goes back to its default."""


class AliasUpdate(_Body):
    spec: AliasSpecPatch = Field(description=f"The fields to change. {PATCH_RULE}")

    def changes(self) -> dict[str, Any]:
        """The patch as JSON, with its explicit nulls (they remove a field)."""
        patch: dict[str, Any] = self.spec.model_dump(mode="json", exclude_unset=True)
        return patch


class ProjectCreate(_Body):
    name: Name


class MemberAdd(_Body):
    """Give a user (made on first use) or a service account a role in the project."""

    principal: Name
    role: Role


class ServiceAccountCreate(_Body):
    name: Name
    role: Role
    """Its role in the project it belongs to."""


class TokenCreate(_Body):
    role: Role
    """What the token may do in the project (narrowed by its owner's role, if it has one)."""
    name: Name | None = None
    """A label for `token list`; default: the owner's name, else 'token'."""
    principal: Name | None = None
    """The user or service account it belongs to; none: a token of the project's own."""
    expires_in_s: Annotated[int | None, Field(ge=1)] = None
    """Seconds until it stops working (at most auth.max_token_lifetime_s); none: never."""
