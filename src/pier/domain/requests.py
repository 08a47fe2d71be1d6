"""What the REST API takes: the bodies of requests that create or change things."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from pier.domain.aliases import AliasSpec
from pier.domain.merge_patch import PATCH_RULE, patch_model
from pier.domain.names import NAME_PATTERN
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
